"""The GPU bench script (bench/gpu.py) run on CPU with a tiny model (--cpu), so that on a GPU only CUDA itself can
still fail: ours through make train with the bench's probe plugin, the baseline with the same recipe settings,
real tokens counted from the batches, the estimator's FLOPs formula stated, the plan's memory per part beside the
measured one, packing from axolotl's own multipack sampler on the Brie data, one table printed last, JSON
written; and a failure fails (non-zero exit, the error in the table and the JSON)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bench import packing
from bench.gpu import baseline_spec
from launch.preflight import estimate as est
from launch.recipe.resolve import resolve
from tests.conftest import OFFLINE, run_cli

RECIPE = "qwen25-3b-instruct-brie"
SMALL = "--sequence_len=256 --micro_batch_size=2 --gradient_accumulation_steps=1"


def report_of(outputs) -> dict:
    [folder] = list((outputs / "bench-gpu").iterdir())
    return json.loads((folder / "report.json").read_text())


def test_the_baseline_gets_the_recipes_own_settings():
    for name in (RECIPE, "llama31-8b-instruct"):
        cfg = resolve(name, device="gpu").config
        spec = baseline_spec(cfg, Path("/m"), 24, Path("/o"))
        assert (spec["micro_batch"], spec["accum"], spec["sequence_len"], spec["lr"]) == (
            cfg["micro_batch_size"],
            cfg["gradient_accumulation_steps"],
            cfg["sequence_len"],
            cfg["learning_rate"],
        )
        assert (spec["lora_r"], spec["lora_alpha"], spec["targets"]) == (
            cfg["lora_r"],
            cfg["lora_alpha"],
            cfg["lora_target_modules"],
        )
        assert spec["gradient_checkpointing"] == bool(cfg.get("gradient_checkpointing"))
    persona = baseline_spec(resolve("llama31-8b-instruct", device="gpu").config, Path("/m"), 1, Path("/o"))
    assert persona["format"] == "prompt-completion" and persona["prompt_template"] == "{instruction}\n"
    assert (persona["lora_r"], persona["micro_batch"]) == (64, 4)  # not the Brie settings of before


def test_the_flops_formula_is_the_estimators():
    m = est.Model(params=1000, trainable=10, quantizable=0, hidden=1, intermediate=1, layers=1, heads=1, vocab=1)
    lora = {"adapter": "lora", "gradient_checkpointing": True}
    assert est.flops_per_token(m, lora, recompute=False) == 4 * 1000 + 6 * 10
    assert est.flops_per_token(m, lora) == 4 * 1000 + 6 * 10 + 2 * 1000
    assert est.flops_per_token(m, {}, recompute=False) == 6 * 1000
    assert "4 x frozen + 6 x trained" in est.FLOPS_FORMULA


def test_packing_from_axolotls_sampler_on_the_brie_data(tmp_path):
    if not packing.BRIE.is_dir():
        pytest.skip(f"the Brie data is absent ({packing.BRIE}); packing is not measured without it")
    code = f"import json; from bench.packing import measure; print('PACKING ' + json.dumps(measure(work={str(tmp_path)!r})))"
    env = {**os.environ, **OFFLINE, "PYTHONPATH": str(packing.REPO)}  # in its own process: axolotl tees stdout
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    r = json.loads(proc.stdout.split("PACKING ", 1)[1].splitlines()[0])
    assert r["sampler"] == "axolotl.utils.samplers.multipack.MultipackBatchSampler"
    assert 0 < r["padded_real_share"] < r["packed_real_share"] <= 1
    assert r["packed_rows"] >= r["ideal_rows"] and r["tokens"] <= r["packed_rows"] * 2 * 2048


def test_packing_without_the_data_says_why(tmp_path, capsys):
    r = packing.measure(tmp_path / "nowhere")
    assert r["status"].startswith("not measured: the Brie data is absent") and "not measured" in capsys.readouterr().out


@pytest.mark.slow
def test_the_gpu_bench_script_on_cpu(outputs, tiny_model):
    tiny = tiny_model("llama")
    proc = run_cli(
        "bench.gpu", "--cpu", f"--model={tiny}", f"--recipes={RECIPE}", "--steps=3", f"--args={SMALL}", timeout=1800
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    r = report_of(outputs)
    [x] = r["results"]
    assert r["status"] == "measured" and "4 x frozen + 6 x trained" in r["flops_formula"]
    for side in ("ours", "baseline"):
        s = x[side]
        assert 0 < s["tokens"] < s["slots"] and s["tokens_per_s"] > 0 and s["timed_steps"] == 2, (side, s)
        assert s["mfu"] is None  # no GPU peak to divide by on CPU
    assert x["settings"] == {"micro_batch_size": 2, "gradient_accumulation_steps": 1, "sequence_len": 256, "lora_r": 16}
    assert set(x["plan"]["parts_gib"]) == {"weights", "trainable", "gradients", "optimizer", "activations", "logits"}
    assert x["ours"]["memory"]["after_load_gib"] is None  # measured on a GPU only
    lines = [line for line in proc.stdout.splitlines() if line.strip()]
    assert lines[-1].startswith(f"| {RECIPE} |") and lines[-2].startswith("|---")  # one table, last
    assert "| weights + trainable (after load) |" in proc.stdout and "FLOPs per token" in proc.stdout


@pytest.mark.slow
def test_a_failure_fails(outputs):
    proc = run_cli("bench.gpu", "--cpu", "--recipes=no-such-recipe", "--steps=2", timeout=900)
    assert proc.returncode == 2 and "the GPU bench failed" in proc.stderr and "Traceback" not in proc.stderr
    r = report_of(outputs)
    assert r["status"] == "failed" and "no-such-recipe" in r["results"][0]["recipe"]
    assert "FAILED" in proc.stdout.splitlines()[-1]


def test_no_gpu_no_bench(outputs):
    proc = run_cli("bench.gpu", timeout=300)
    assert proc.returncode == 2 and "no CUDA device" in proc.stderr and "--cpu" in proc.stderr


def cpu_part(quick: bool) -> dict:
    """The CPU half of `make bench` as measure() returns it, with placeholder figures: the test below is about what
    a failed GPU part does to the command and the report, not about these numbers (test_bench.py measures them)."""
    from bench.measure import spread

    one = spread([1.0])
    side = dict.fromkeys(("s_per_step", "tokens_per_s", "peak_rss_gb", "wall_s"), one) | {"tokens_method": "-"}
    return {
        "quick": quick,
        "training": {"ours": side, "baseline": side, "steps": 2, "run": "-"},
        "packing": packing.measure(Path("/nonexistent-brie")),
        "preflight": {"cold_cli_s": {RECIPE: 1.0}, "warm_s": {RECIPE: one}},
        "pipeline": {"stages": {"merge_s": one}, "f16_mb": one, "convert_mb_per_s": one, "quantize": {}},
        "judge": {"requests": 2, "latency_s": 0.2, "concurrency_1": one, "speedup_1": 1.0},
    }


def test_a_failed_gpu_part_fails_make_bench_after_the_report(outputs, monkeypatch, capsys, tmp_path):
    from bench import gpu
    from bench import run as bench_run

    def measure(quick, work, repeats, log=print):  # the real GPU part (on CPU), failing on its recipe
        failed = gpu.run_gpu(2, work / "gpu", ["no-such-recipe"], cpu=True, fail=False, brie=tmp_path / "none")
        return {**cpu_part(quick), "gpu": failed}

    monkeypatch.setattr(bench_run, "measure", measure)
    assert bench_run.main(["--quick"]) == 2
    err = capsys.readouterr().err
    assert "the GPU part of the bench failed" in err and "Traceback" not in err
    [folder] = list((outputs / "bench").iterdir())
    report = json.loads((folder / "report.json").read_text())
    assert report["gpu"]["status"] == "failed" and "no-such-recipe" in report["gpu"]["results"][0]["error"]
    text = (folder / "report.md").read_text()
    assert "| no-such-recipe | FAILED:" in text and "## Training" in text  # the CPU part is kept
    assert "not measured: the Brie data is absent" in text  # packing from axolotl's sampler, or why not
