"""`make bench-gpu` (and the GPU part of `make bench`): ours vs the seed-style baseline on one GPU, for a 3B and an 8B
recipe on same-shape random weights (throughput and memory do not depend on the weights' values), a few dozen
steps each. Ours is `make train` of the recipe (axolotl with packing, Liger, bf16 and flash-attention or the SDPA
fallback as the recipe and this GPU give; launch/preflight/kernels.py); the baseline (bench/baseline_trainer.py) gets
the same recipe settings from the run's own config.yaml. Both count real tokens from the batches their training
steps receive and time the steps after the first (bench/probe.py). MFU uses the estimator's FLOPs formula
(launch/preflight/estimate.py FLOPS_FORMULA; model FLOPs, recompute not counted) over the GPU's dense bf16 peak
from launch/preflight/gpus.yaml. Memory: the plan's prediction per part against what was measured. Packing
efficiency: axolotl's own multipack sampler on the Brie data (bench/packing.py, CPU). Any failure fails: the
table and JSON are written with the error, then the command exits non-zero. --cpu runs the same script on CPU
(tests/test_bench_gpu.py, with a tiny model), so that on a GPU only CUDA itself can still fail."""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from bench import gpu_report, packing
from bench.cpu import run_baseline
from bench.probe import PROBE_FILE, steady
from core import atomic, cli, settings
from core.errors import UserError
from core.paths import outputs_dir
from launch.preflight import estimate as est

RECIPES = ("qwen25-3b-instruct-brie", "llama31-8b-instruct")
STEPS = 24
PLUGIN = "bench.probe_plugin.BenchProbePlugin"
BUDGET_S = 8 * 60  # the whole bench on one H100-class GPU


class BenchFailed(UserError):
    def __init__(self, report: dict[str, Any]):
        failed = [f"{x['recipe']}: {x['error']}" for x in report["results"] if "error" in x]
        super().__init__("the GPU bench failed:\n  " + "\n  ".join(failed), hint="the table and JSON keep the errors")
        self.report = report


def same_shape_model(recipe: str, out: Path) -> Path:
    """Random weights in the recipe's architecture (bf16 on the GPU), with a real tokenizer (SmolLM2's)."""
    import torch
    import transformers
    from transformers import AutoConfig, AutoTokenizer

    from launch.recipe.architecture import facts_for
    from launch.recipe.registry import load_recipe
    from tools.tiny_models import smollm2_dir

    facts = facts_for(load_recipe(recipe).config["base_model"])
    raw = dict(facts["config"])
    raw.pop("architectures", None)
    config = AutoConfig.for_model(raw.pop("model_type"), **raw)
    gpu = torch.cuda.is_available()
    with torch.device("cuda" if gpu else "cpu"):
        model = getattr(transformers, facts["architecture"])._from_config(
            config, dtype=torch.bfloat16 if gpu else torch.float32
        )
    model.save_pretrained(out)
    AutoTokenizer.from_pretrained(smollm2_dir()).save_pretrained(out)
    del model
    if gpu:
        torch.cuda.empty_cache()
    return out


def train_ours(recipe: str, args: str, work: Path) -> tuple[Path, float, dict[str, Any]]:
    """`make train` of the recipe (--force: on CPU, the test's tiny model stands in for the recipe's size):
    (run dir, axolotl's train_runtime, the tracked process)."""
    import re

    from bench.measure import run_tracked
    from core import childenv, rundir
    from core.paths import REPO

    env = childenv.child_env(offline=True, extra={"OUTPUTS": str(work), "PYTHONPATH": str(REPO)})
    cmd = [sys.executable, "-m", "launch.train", recipe, "--force", f"--args={args}"]
    tracked = run_tracked(cmd, env=env, cwd=REPO)
    if tracked["returncode"] != 0:
        tail = [line for line in tracked["stdout"].splitlines() if not line.startswith(("preflight:", "    hint:"))]
        raise RuntimeError("make train failed:\n" + "\n".join(tail[-25:]))
    pointer = work / "runs" / recipe / rundir.LATEST
    run = pointer.parent / pointer.read_text().strip()
    log = (run / "logs" / "train.log").read_text()
    return run, float(re.findall(r"'train_runtime': '?([0-9.]+)", log)[-1]), tracked


def baseline_spec(cfg: dict[str, Any], model: Path, steps: int, out: Path) -> dict[str, Any]:
    """The recipe's settings, from the config our run really used, in the baseline trainer's terms."""
    from data.entries import dataset_file

    ds = cfg["datasets"][0]
    kind = ds.get("type")
    spec = {
        "model": str(model),
        "data": str(dataset_file(ds)),
        "format": "prompt-completion" if isinstance(kind, dict) else "messages",
        "steps": steps,
        "micro_batch": cfg["micro_batch_size"],
        "accum": cfg["gradient_accumulation_steps"],
        "lr": cfg["learning_rate"],
        "scheduler": cfg.get("lr_scheduler") or "linear",
        "warmup_steps": cfg.get("warmup_steps"),
        "warmup_ratio": cfg.get("warmup_ratio"),
        "sequence_len": cfg["sequence_len"],
        "lora_r": cfg["lora_r"],
        "lora_alpha": cfg["lora_alpha"],
        "lora_dropout": cfg.get("lora_dropout", 0.0),
        "targets": cfg["lora_target_modules"],
        "gradient_checkpointing": bool(cfg.get("gradient_checkpointing")),
        "seed": cfg.get("seed", 42),
        "output_dir": str(out),
    }
    if isinstance(kind, dict):
        spec["fields"] = {
            "prompt": kind.get("field_instruction", "prompt"),
            "completion": kind.get("field_output", "completion"),
        }
        spec["prompt_template"] = kind.get("no_input_format") or "{instruction}"
    return spec


def gpu_row(name: str) -> dict[str, Any] | None:
    rows = est.gpu_table()["gpus"]
    exact = [dict(r, name=k) for k, r in rows.items() if r.get("runpod_id") == name]
    loose = [dict(r, name=k) for k, r in rows.items() if k.lower().replace("-", " ") in name.lower()]
    return (exact or sorted(loose, key=lambda r: -len(r["name"])) or [None])[0]


def side(record: dict[str, Any], m: est.Model, cfg: dict[str, Any], peak_tflops: float | None) -> dict[str, Any]:
    timed = steady(record)
    tps = timed["tokens_per_s"]
    flops = est.flops_per_token(m, cfg, recompute=False)
    return {
        **timed,
        "mfu": flops * tps / (peak_tflops * 1e12) if tps and peak_tflops else None,
        "memory": record["memory"],
        "peak_gpu_gb": record["memory"].get("peak_allocated_gib"),
    }


def compare(recipe: str, steps: int, work: Path, model: Path | None = None, extra: str = "") -> dict[str, Any]:
    import torch

    from launch.recipe.resolve import resolve

    t0 = time.perf_counter()
    model = model or same_shape_model(recipe, work / f"{recipe}-random")
    built_s = time.perf_counter() - t0
    device = "gpu" if torch.cuda.is_available() else "cpu"
    plugins = [*(resolve(recipe, device=device).config.get("plugins") or []), PLUGIN]
    args = (
        f"--base_model={model} --max_steps={steps} --save_steps={steps} --eval_steps=null --eval_strategy=no "
        f"--test_datasets=null --logging_steps=1 --use_tensorboard=false --plugins=[{','.join(plugins)}] {extra}"
    )
    run, train_s, tracked = train_ours(recipe, args, work / "ours")
    cfg = yaml.safe_load((run / "config.yaml").read_text())
    ours = json.loads((run / "output" / PROBE_FILE).read_text())
    b, base_tracked = run_baseline(baseline_spec(cfg, model, steps, work / "baseline"), work)
    hub = load_recipe_base(recipe)
    m = est.model_facts(cfg, hub if model.name.endswith("-random") else str(model))
    name = torch.cuda.get_device_name(0) if device == "gpu" else "CPU"
    row = gpu_row(name) if device == "gpu" else None
    vram = torch.cuda.get_device_properties(0).total_memory / est.GIB if device == "gpu" else 80.0
    plan = est.memory(m, cfg, "none", 1, vram)
    peak = float(row["bf16_tflops"]) if row else None
    return {
        "recipe": recipe,
        "gpu": name,
        "gpu_row": row["name"] if row else None,
        "random_weights": model.name.endswith("-random"),
        "params": m.params,
        "trained_params": m.trainable,
        "attention": cfg.get("attn_implementation"),
        "packing": bool(cfg.get("sample_packing")),
        "steps": steps,
        "settings": {
            k: cfg.get(k) for k in ("micro_batch_size", "gradient_accumulation_steps", "sequence_len", "lora_r")
        },
        "ours": {**side(ours, m, cfg, peak), "train_s": train_s, "wall_s": tracked["seconds"]},
        "baseline": {
            **side(b["probe"], m, cfg, peak),
            "train_s": b["train_seconds"],
            "wall_s": base_tracked["seconds"],
        },
        "plan": {"parts_gib": plan.parts, "total_gib": plan.total},
        "seconds": time.perf_counter() - t0,
        "model_build_s": built_s,
    }


def load_recipe_base(recipe: str) -> str:
    from launch.recipe.registry import load_recipe

    return load_recipe(recipe).config["base_model"]


def run_gpu(steps: int, work: Path, recipes=RECIPES, model: Path | None = None, extra: str = "", cpu: bool = False,
            fail: bool = True, brie: Path = packing.BRIE) -> dict[str, Any]:  # fmt: skip
    """Every recipe, each failure recorded; raises BenchFailed at the end when one failed (unless fail=False)."""
    import torch

    if not torch.cuda.is_available() and not cpu:
        return {"status": "not measured: no GPU"}
    start = time.perf_counter()
    out: dict[str, Any] = {"status": "measured", "results": [], "flops_formula": est.FLOPS_FORMULA}
    for recipe in recipes:
        try:
            out["results"].append(compare(recipe, steps, work / recipe, model, extra))
        except Exception as exc:  # noqa: BLE001 - one recipe failing must not lose the others' numbers
            out["results"].append({"recipe": recipe, "error": f"{type(exc).__name__}: {exc}"[-2000:]})
    out["packing"] = packing.measure(brie, work=work / "packing")
    out["seconds"] = time.perf_counter() - start
    if any("error" in x for x in out["results"]):
        out["status"] = "failed"
        if fail:
            raise BenchFailed(out)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipes", default=",".join(RECIPES))
    parser.add_argument("--steps", type=int, default=None, help=f"(default: BENCH_STEPS, else {STEPS})")
    parser.add_argument("--model", default=None, help="a model folder instead of same-shape random weights")
    parser.add_argument("--args", default="", help="extra overrides for both sides' recipe (the CPU test)")
    parser.add_argument("--cpu", action="store_true", help="run on CPU (the test of this script)")
    parser.add_argument("--brie", default=str(packing.BRIE), help="the Brie data for the packing figure")
    ns = parser.parse_args(argv)
    import os

    os.environ.setdefault("AXOLOTL_DO_NOT_TRACK", "1")  # packing runs axolotl in this process; no telemetry offline

    def body() -> None:
        import tempfile

        import torch

        s = settings.load()
        if not torch.cuda.is_available() and not ns.cpu:
            raise UserError("no CUDA device: make bench-gpu measures a GPU", hint="--cpu runs the same script on CPU")
        folder = outputs_dir() / "bench-gpu" / datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        steps = ns.steps or s.bench_steps or STEPS
        model = Path(ns.model) if ns.model else None
        with tempfile.TemporaryDirectory(prefix="bench-gpu-") as tmp:
            try:
                report = run_gpu(steps, Path(tmp), ns.recipes.split(","), model, ns.args, ns.cpu, brie=Path(ns.brie))
            except BenchFailed as exc:
                report = exc.report
            report["meta"] = gpu_report.machine(steps, argv if argv is not None else sys.argv[1:])
        folder.mkdir(parents=True, exist_ok=True)
        atomic.write_json(folder / "report.json", report)
        text = gpu_report.markdown(report, BUDGET_S)
        atomic.write_text(folder / "report.md", text)
        print(f"written: {folder}/report.json report.md", file=sys.stderr)
        print(text, end="")
        if report["status"] == "failed":
            raise BenchFailed(report)

    return cli.main(body)


if __name__ == "__main__":
    sys.exit(main())
