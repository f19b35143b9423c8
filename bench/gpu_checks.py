"""The GPU check's stages around the trainings (bench/gpu_stages.py): the machine and the MFU peak, the disk the
check writes (only what it writes: random-weight models, one recipe at a time, the runs' checkpoints and
adapters, the data; never merged models or GGUF files, which it does not make), the 1-GPU DeepSpeed ZeRO-2 step,
and the targets."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from bench.gpu_report import BUDGET_S, Report
from bench.gpu_stages import attention_path, child, json_line, ours, run_args, side
from core.settings import Settings

ZERO2_STEPS = 10


def environment(report: Report, carry: Path, cpu: bool, s: Settings) -> dict[str, Any] | None:
    from launch.telemetry_record import UnknownGpu, gpu_peak

    found: dict[str, Any] = {}

    def env(r: dict) -> None:
        machine = json_line(child(["-m", "bench.gpu_model", "info"]), "GPU_MODEL")
        if not cpu and not machine["gpu"]:
            raise RuntimeError("torch sees no CUDA device: make gpu-check measures a GPU (DEVICE=cpu runs it on CPU)")
        install = report.stage_result("install the carry") or {}
        r.update(machine, axolotl=(install.get("result") or {}).get("axolotl"), path=attention_path(machine, cpu)[1])
        r["note"] = f"{machine['gpu'] or 'CPU'}; {r['path']}"
        found.update(machine)

    def peak(r: dict) -> None:
        r["note"] = "CPU: MFU is a GPU figure (each side reports none)"
        if not cpu:
            try:
                row, tflops = gpu_peak(found["gpu"], s.gpu_table)
            except UnknownGpu as exc:
                r["note"] = str(exc)
                raise RuntimeError(str(exc)) from None
            r.update(row=row, bf16_tflops=tflops, note=f"{row}: dense bf16 peak {tflops:g} TFLOP/s")

    report.run("environment", env)
    report.run("MFU peak", peak, needs=("environment",))
    e, p = report.stage_result("environment"), report.stage_result("MFU peak")
    if e["status"] == "ok":
        e["result"]["mfu_peak"] = p["result"].get("note") or p.get("error")
        report.write()
    return found or None


def disk(report: Report, carry: Path, work: Path, recipes: list[str], cpu: bool, s: Settings) -> None:
    import json

    from launch.preflight import estimate as est
    from resolver.resolve import resolve

    def body(r: dict) -> None:
        parts: dict[str, float] = {}
        preflight: dict[str, float] = {}
        for recipe in recipes:
            cfg = resolve(recipe, s, device="gpu").config
            m = est.model_facts(cfg, cfg["base_model"], s.cache)
            config = json.loads((carry / "models" / recipe / "config.json").read_text())
            model = 0.05e9 if cpu else m.params * 2.0  # bf16 weights of the real shape; tiny on CPU
            runs = (m.trainable * 12.0 + m.trainable * 4.0) * (0.0 if cpu else 1.0)  # one checkpoint + the adapter
            parts[f"{recipe}: random-weight model ({config['model_type']})"] = model / 1e9
            parts[f"{recipe}: checkpoint + adapter (ours; the baseline saves none)"] = runs / 1e9 + 0.05
            # what make train's own disk preflight counts for the same run (it adds the merged model and GGUF
            # files of the later steps, which the check never makes, and refuses when they do not fit)
            preflight[recipe] = sum(est.disk(m, {**cfg, "save_total_limit": 1}, downloads_base=False).parts.values())
        models = [v for k, v in parts.items() if "model" in k]
        need = max(models) + sum(v for k, v in parts.items() if "model" not in k)  # one model on disk at a time
        free = shutil.disk_usage(work).free / 1e9
        tight = {k: v for k, v in preflight.items() if v > free - max(models)}
        r.update(parts_gb=parts, need_gb=need, free_gb=free, where=str(work), make_train_preflight_gb=preflight,
                 note=f"needs {need:.1f} GB (one model at a time), {free:.1f} GB free at {work}"
                 + "".join(f"; make train's disk preflight counts {v:.0f} GB for {k} (merged + GGUF included) "
                           "and will refuse it" for k, v in tight.items()))  # fmt: skip
        if need > free:
            raise RuntimeError(f"the check writes {need:.1f} GB and {free:.1f} GB is free at {work}")

    report.run("disk", body, needs=("environment",))


def zero2(
    report: Report, machine: dict | None, recipe: str, ns, work: Path, extra: dict, results: dict, s: Settings
) -> None:
    from launch.distributed.strategy import CPU_BROKEN, DEEPSPEED_DIR, ZERO

    def body(r: dict) -> None:
        if ns.cpu:
            r["note"] = f"not run on CPU: {CPU_BROKEN['zero2']} (launch/distributed/strategy.py)"
            return
        if not (machine or {}).get("versions", {}).get("deepspeed"):
            r["note"] = "not run: deepspeed is not in the carry (bench/gpu_carry.txt) nor on the machine"
            return
        model = work / "models" / recipe
        data = Path(report.stage_result(f"{recipe}: data")["result"]["file"])
        args = run_args(model, data, ZERO2_STEPS, {**extra, "deepspeed": str(DEEPSPEED_DIR / ZERO["zero2"])})
        # DeepSpeed initializes a process group even for one process
        single = {"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": "29513", "RANK": "0", "LOCAL_RANK": "0", "WORLD_SIZE": "1"}
        run, rec = ours(recipe, args, work / "outputs" / "zero2", single)
        import yaml

        cfg = yaml.safe_load((run / "config.yaml").read_text())
        r.update(
            recipe=recipe, steps=ZERO2_STEPS, side=side(rec, cfg, cfg.get("attn_implementation") or "-", s.gpu_table)
        )
        r["note"] = f"{recipe} with ZeRO-2: {r['side']['tokens_per_s'] or 0:.0f} tokens/s"

    report.run("DeepSpeed ZeRO-2, 1 GPU", body, needs=(f"{recipe}: ours",))


def summary(report: Report) -> None:
    def body(r: dict) -> None:
        targets = []
        for s in report.data["stages"]:
            if not s["name"].endswith(": compare") or s["status"] != "ok":
                continue
            x = s["result"]
            o, plan = x["ours"], x.get("plan_gib")
            measured = o.get("peak_gpu_reserved_gib")
            if plan and measured:
                off = plan / measured - 1
                targets.append({"target": f"{x['recipe']}: the plan's peak within +-10 % of the measured (reserved)",
                                "measured": f"plan {plan:.1f} GiB vs {measured:.1f} GiB ({off:+.0%})",
                                "reached": "yes" if abs(off) <= 0.10 else "no"})  # fmt: skip
            if x["recipe"] == "llama31-8b-instruct" and "H100" in (o.get("device") or ""):
                mfu, sp = o.get("mfu"), x.get("speedup")
                targets.append({"target": "llama31-8b-instruct LoRA on one H100: >= 45 % MFU",
                                "measured": "-" if mfu is None else f"{mfu:.1%}",
                                "reached": "-" if mfu is None else ("yes" if mfu >= 0.45 else "no")})  # fmt: skip
                targets.append({"target": "llama31-8b-instruct: >= 2.5x the baseline's tokens/s",
                                "measured": "-" if sp is None else f"{sp:.2f}x",
                                "reached": "-" if sp is None else ("yes" if sp >= 2.5 else "no")})  # fmt: skip
        import time

        spent = time.time() - report.data.get("t0", time.time())
        targets.append({"target": f"the whole check within {BUDGET_S // 60} min on one H100",
                        "measured": f"{spent / 60:.1f} min so far", "reached": "-"})  # fmt: skip
        failed = [s["name"] for s in report.data["stages"] if s["status"] in ("failed", "skipped")]
        r.update(
            targets=targets,
            failed=failed,
            note=f"failed or skipped: {', '.join(failed)}" if failed else "all stages ran",
        )

    report.run("summary", body)
