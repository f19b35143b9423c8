"""The stages of `make gpu-check` (bench/gpu_device.py runs them in the environment bench/gpu_check.py built from
the carry): the machine, the MFU peak, the disk the check writes, the Brie data, then per recipe a random-weight model of the real
shape, ours (`make train` of the recipe, launch.train, the GPU profile), the seed-style baseline
(bench/baseline_trainer.py) with the settings ours ran with, and the comparison; then a 1-GPU DeepSpeed ZeRO-2
step and the targets. Each stage writes its results (bench/gpu_report.py) before the next starts; a failure is
recorded and the stages that needed it say so. Both sides are measured by the same probe (launch/telemetry.py)
and summarized by the same functions (launch/telemetry_record.py)."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

from bench.gpu_report import Report
from core import childenv
from core.paths import REPO
from core.settings import Settings

RECIPES = ("qwen25-3b-instruct-brie", "llama31-8b-instruct")
GPU_STEPS, CPU_STEPS = 30, 3
CPU_ARGS = {"sequence_len": 256, "micro_batch_size": 2, "gradient_accumulation_steps": 1}
HOPPER = (9, 0)
MEMORY_HOW = ("max_memory_allocated / max_memory_reserved over each training process, loading included: reset on "
              "neither side (a reset by axolotl's memory logging is folded in first, launch/telemetry.py)")  # fmt: skip


def child(args: list[str], env: dict | None = None, timeout: int = 3600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], cwd=REPO, env=env or childenv.child_env(), capture_output=True,
                          text=True, timeout=timeout)  # fmt: skip


def json_line(proc: subprocess.CompletedProcess, tag: str) -> dict[str, Any]:
    line = next((x for x in proc.stdout.splitlines() if x.startswith(tag + " ")), None)
    if proc.returncode != 0 or line is None:
        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-30:])
        raise RuntimeError(f"exit status {proc.returncode}:\n{tail}")
    return json.loads(line.split(" ", 1)[1])


def attention_path(machine: dict[str, Any], cpu: bool) -> tuple[dict[str, Any], str]:
    """The overrides this GPU needs to train, and the path in words: flash-attention where it imports, else SDPA
    with packing on Hopper and later, else SDPA without packing (launch/preflight/kernels.py refuses SDPA with
    packing in bf16 before Hopper)."""
    if cpu:
        return {}, "CPU profile: eager attention, no packing, fp32 (recipes/fragments/hardware/cpu.yaml)"
    if machine["versions"].get("flash-attn"):
        return {}, "flash_attention_2 with sample packing (the GPU profile)"
    cc = tuple(machine["capability"])
    if cc >= HOPPER:
        return {}, f"torch SDPA with sample packing (flash-attn is not installed; compute capability {cc[0]}.{cc[1]})"
    return {"sample_packing": False}, (
        f"torch SDPA WITHOUT sample packing: flash-attn is not installed and the GPU is compute capability "
        f"{cc[0]}.{cc[1]} < 9.0, where SDPA with packing in bf16 may train on a 0.0 loss (the kernel "
        f"launch/preflight/kernels.py refuses); tokens/s is then not comparable with a Hopper's"
    )


def data_files(
    carry: Path, work: Path, recipe: str, steps: int, args: dict[str, Any], s: Settings
) -> tuple[Path, dict[str, Any]]:
    """The Brie conversations in the recipe's own format, repeated enough times for `steps` full steps."""
    from data.tools.convert import convert_file
    from resolver.resolve import resolve

    cfg = resolve(recipe, s, device="gpu", args=args).config
    src = work / "data" / "brie.messages.jsonl"
    if not src.is_file():
        src.parent.mkdir(parents=True, exist_ok=True)
        src.write_text(
            "".join((carry / "data" / "brie" / f).read_text() for f in ("sft.train.sample.jsonl", "sft.val.jsonl"))
        )
    kind = cfg["datasets"][0].get("type")
    fmt = "prompt-completion" if isinstance(kind, dict) else "messages"
    one, left_out = src, 0
    if fmt != "messages":  # one prompt and one answer per record: single-turn conversations only (all of Brie's)
        rows = [x for x in src.read_text().splitlines() if x.strip()]
        single = [
            x
            for x in rows
            if [m["role"] for m in json.loads(x)["messages"] if m["role"] != "system"] == ["user", "assistant"]
        ]
        left_out = len(rows) - len(single)
        (work / "data" / "single-turn.jsonl").write_text("\n".join(single) + "\n")
        one = work / "data" / f"brie.{fmt}.jsonl"
        convert_file(work / "data" / "single-turn.jsonl", "messages", fmt, one)
    lines = [x for x in one.read_text().splitlines() if x.strip()]
    per_step = int(cfg["micro_batch_size"]) * int(cfg["gradient_accumulation_steps"])
    tokens = sum(len(x) for x in lines) / 3.7  # only to size the repetition; every figure counts real tokens
    repeat = (
        max(math.ceil(steps * per_step / len(lines)), math.ceil(steps * per_step * cfg["sequence_len"] / tokens)) + 1
    )
    out = work / "data" / f"{recipe}.jsonl"
    out.write_text("\n".join(lines * repeat) + "\n")
    return out, {"format": fmt, "conversations": len(lines), "multi_turn_left_out": left_out, "repeated": repeat,
                 "file": str(out)}  # fmt: skip


def run_args(model: Path, data: Path, steps: int, extra: dict[str, Any]) -> str:
    keys = {"base_model": str(model), "datasets.0.path": str(data), "test_datasets": "null", "eval_steps": "null",
            "eval_strategy": "no", "max_steps": steps, "save_steps": steps, "save_total_limit": 1,
            "logging_steps": 1, "use_tensorboard": "false", **extra}  # fmt: skip
    return " ".join(f"--{k}={'false' if v is False else 'true' if v is True else v}" for k, v in keys.items())


def ours(recipe: str, args: str, outputs: Path, env: dict | None = None) -> tuple[Path, dict[str, Any]]:
    from core import manifest, rundir

    env = childenv.child_env(extra={**(env or {}), "OUTPUTS": str(outputs)})
    proc = child(["-m", "launch.train", recipe, "--force", f"--args={args}"], env)
    if proc.returncode != 0:
        tail = [x for x in proc.stdout.splitlines() if not x.startswith(("preflight:", "    hint:"))]
        raise RuntimeError(f"make train exited {proc.returncode}:\n" + "\n".join(tail[-25:]) + proc.stderr[-1500:])
    pointer = outputs / "runs" / recipe / rundir.LATEST
    run = pointer.parent / pointer.read_text().strip()
    t = manifest.read(run).train.telemetry
    if t is None:
        raise RuntimeError(f"make train wrote no telemetry into {run}'s manifest")
    return run, json.loads((run / t.file).read_text())


def baseline_spec(cfg: dict[str, Any], steps: int, out: Path) -> dict[str, Any]:
    """The settings ours ran with (its config.yaml), in the baseline trainer's terms."""
    from data.entries import dataset_file

    kind = cfg["datasets"][0].get("type")
    spec = {
        "model": cfg["base_model"], "data": str(dataset_file(cfg["datasets"][0])),
        "format": "prompt-completion" if isinstance(kind, dict) else "messages", "steps": steps,
        "micro_batch": cfg["micro_batch_size"], "accum": cfg["gradient_accumulation_steps"],
        "lr": cfg["learning_rate"], "scheduler": cfg.get("lr_scheduler") or "linear",
        "warmup_steps": cfg.get("warmup_steps"), "warmup_ratio": cfg.get("warmup_ratio"),
        "sequence_len": cfg["sequence_len"], "lora_r": cfg["lora_r"], "lora_alpha": cfg["lora_alpha"],
        "lora_dropout": cfg.get("lora_dropout", 0.0), "targets": cfg["lora_target_modules"],
        "gradient_checkpointing": bool(cfg.get("gradient_checkpointing")), "seed": cfg.get("seed", 42),
        "weight_decay": cfg.get("weight_decay", 0.0), "chat_template": cfg.get("chat_template"),
        "output_dir": str(out),
    }  # fmt: skip
    if isinstance(kind, dict):
        spec["fields"] = {
            "prompt": kind.get("field_instruction", "prompt"),
            "completion": kind.get("field_output", "completion"),
        }
        spec["prompt_template"] = kind.get("no_input_format") or "{instruction}"
    return spec


def side(record: dict[str, Any], cfg: dict[str, Any], attention: str, table: Path | None) -> dict[str, Any]:
    from launch.telemetry_record import summarize

    t = summarize(record, table)
    return {**t.model_dump(exclude={"plan"}), "real_share": t.tokens / t.slots if t.slots else None,
            "attention": attention, "packing": bool(cfg.get("sample_packing"))}  # fmt: skip


def compare(recipe: str, ours_rec: dict, base_rec: dict, cfg: dict, plan: Any, table: Path | None) -> dict[str, Any]:
    from launch.telemetry_record import FORMULA

    o = side(ours_rec, cfg, cfg.get("attn_implementation") or "-", table)
    b = side(base_rec, {}, "eager", table)
    peak = "peak_gpu_allocated_gib" if o["peak_gpu_allocated_gib"] is not None else "peak_rss_gib"
    ratio = lambda a, c: a / c if a and c else None  # noqa: E731
    return {"recipe": recipe, "ours": o, "baseline": b, "speedup": ratio(o["tokens_per_s"], b["tokens_per_s"]),
            "memory_ratio": ratio(o[peak], b[peak]), "memory_compared": peak,
            "plan_gib": plan.total_gib if plan else None, "plan_parts_gib": plan.parts_gib if plan else None,
            "formula": FORMULA, "memory_how": MEMORY_HOW,
            "note": f"ours {o['tokens_per_s'] or 0:.0f} vs {b['tokens_per_s'] or 0:.0f} tokens/s"}  # fmt: skip


def recipe_stages(
    report: Report, recipe: str, ns, carry: Path, work: Path, extra: dict, results: dict, s: Settings
) -> None:
    steps = ns.steps or (CPU_STEPS if ns.cpu else GPU_STEPS)
    model = work / "models" / recipe
    x: dict[str, Any] = results.setdefault(recipe, {})

    def data(r: dict) -> None:
        x["data"], info = data_files(carry, work, recipe, steps, extra, s)
        r.update(info, note=f"{info['conversations']} Brie conversations ({info['format']}) x {info['repeated']}")

    def build(r: dict) -> None:
        proc = child(["-m", "bench.gpu_model", "build", f"--config={carry / 'models' / recipe}", f"--out={model}",
                      *(["--tiny"] if ns.cpu else [])])  # fmt: skip
        r.update(
            json_line(proc, "GPU_MODEL"), source=json.loads((carry / "models" / recipe / "SOURCE.json").read_text())
        )
        r["note"] = f"{r['params'] / 1e9:.3f}B random-weight parameters ({r['dtype']})"

    def train_ours(r: dict) -> None:
        x["run"], x["ours"] = ours(recipe, run_args(model, x["data"], steps, extra), work / "outputs" / recipe)
        r.update(run=str(x["run"]), telemetry=x["ours"], note=f"run {x['run'].name}")

    def train_baseline(r: dict) -> None:
        import yaml

        x["cfg"] = yaml.safe_load((x["run"] / "config.yaml").read_text())
        spec = baseline_spec(x["cfg"], steps, work / "baseline" / recipe)
        Path(spec["output_dir"]).mkdir(parents=True, exist_ok=True)
        (work / "baseline" / f"{recipe}.json").write_text(json.dumps(spec))
        out = json_line(child(["-m", "bench.baseline_trainer", "--spec", str(work / "baseline" / f"{recipe}.json")]),
                        "BASELINE_RESULT")  # fmt: skip
        x["baseline"] = out.pop("telemetry")
        r.update(
            spec=spec, **out, telemetry=x["baseline"], note=f"{out['steps']} steps, final loss {out['final_loss']:.3f}"
        )

    def both(r: dict) -> None:
        from core import manifest

        r.update(
            compare(
                recipe, x["ours"], x["baseline"], x["cfg"], manifest.read(x["run"]).train.telemetry.plan, s.gpu_table
            )
        )

    report.run(f"{recipe}: data", data, needs=("environment",))
    report.run(f"{recipe}: model", build, needs=("environment", "disk"))
    report.run(f"{recipe}: ours", train_ours, needs=(f"{recipe}: data", f"{recipe}: model"))
    report.run(f"{recipe}: baseline", train_baseline, needs=(f"{recipe}: ours",))
    report.run(f"{recipe}: compare", both, needs=(f"{recipe}: ours", f"{recipe}: baseline"))
