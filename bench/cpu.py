"""The CPU part of `make bench` (every machine): the default recipe vs the seed-style baseline, preflight latency,
judge throughput. The pipeline as a user runs it and the cold CLI times are bench/pipeline.py; padding vs packing on
the Brie data is bench/packing.py (axolotl's own tokenization and multipack sampler)."""

from __future__ import annotations

import json
import re
import sys
import time
from pathlib import Path
from typing import Any

from bench.measure import repeat, run_tracked, spread
from core import childenv
from core.paths import REPO
from core.settings import DEFAULT_RECIPE, Settings

DEFAULT = DEFAULT_RECIPE


def _env(outputs: Path) -> dict:
    return childenv.child_env(offline=True, extra={"OUTPUTS": str(outputs), "PYTHONPATH": str(REPO)})


def train_ours(recipe: str, args: str, work: Path) -> tuple[Path, str, float, dict[str, Any]]:
    """`make train RECIPE=recipe ARGS=args` as a user types it, into OUTPUTS=work/ours, measured and checked (a
    completed run with its final adapter): (run dir, its train log, train_runtime s, the measured command)."""
    from bench.pipeline import checked_train, make

    ours = make("train", {"RECIPE": recipe, "ARGS": args}, work / "ours")
    run = checked_train(ours, work / "ours")
    log = (run / "logs" / "train.log").read_text()
    return run, log, float(re.findall(r"'train_runtime': '?([0-9.]+)", log)[-1]), ours


def run_baseline(spec: dict[str, Any], work: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """The seed-style trainer in its own process, measured: (its results, tracking)."""
    (work / "spec.json").write_text(json.dumps(spec))
    base = run_tracked(
        [sys.executable, "-m", "bench.baseline_trainer", "--spec", str(work / "spec.json")],
        env=_env(work / "baseline"),
        cwd=REPO,
    )
    line = next((x for x in base["stdout"].splitlines() if x.startswith("BASELINE_RESULT ")), None)
    if base["returncode"] != 0 or line is None:
        raise RuntimeError(base["stdout"][-2000:])
    return json.loads(line.split(" ", 1)[1]), base


def train_vs_baseline(steps: int, work: Path, s: Settings) -> dict[str, Any]:
    """Same model, data, LoRA, batch, scheduler, warmup, dropout, seed and steps: axolotl (our recipe, CPU profile)
    vs plain TRL SFTTrainer, both counted by the same probe (launch/telemetry.py: real tokens from the batches)."""
    from bench.gpu_stages import baseline_spec
    from core import manifest
    from launch.telemetry_record import summarize

    # the recipe as it is, with in-training evaluation off so the timing matches the baseline's (no eval);
    # the held-out split stays in the config for the eval stage
    args = f"--max_steps={steps} --save_steps={steps} --eval_steps=null --eval_strategy=no --logging_steps=1"
    work.mkdir(parents=True, exist_ok=True)
    run, _, train_s, ours = train_ours(DEFAULT, args, work)
    import yaml

    spec = baseline_spec(yaml.safe_load((run / "config.yaml").read_text()), steps, work / "baseline")
    b, base = run_baseline(spec, work)
    o_t = manifest.read(run).train.telemetry
    b_t = summarize(b["telemetry"], s.gpu_table)
    how = "counted from the batches its training steps receive (launch/telemetry.py), steps after the first few"
    return {
        "steps": steps,
        "run": str(run),
        "outputs": str(work / "ours"),
        "make": {k: ours[k] for k in ("seconds", "command", "returncode", "stdout")},  # the pipeline's train, quick
        "ours": {
            "wall_s": ours["seconds"],
            "train_s": train_s,
            "s_per_step": train_s / steps,
            "tokens_per_s": o_t.tokens_per_s if o_t else None,
            "peak_rss_gb": ours["peak_rss_gb"],
            "tokens_method": how,
            "command": ours["command"],
        },
        "baseline": {
            "wall_s": base["seconds"],
            "train_s": b["train_seconds"],
            "s_per_step": b["s_per_step"],
            "tokens_per_s": b_t.tokens_per_s,
            "peak_rss_gb": base["peak_rss_gb"],
            "padding_real_share": b_t.tokens / b_t.slots if b_t.slots else None,
            "tokens_method": how,
        },
    }


def preflight(recipes: list[str], cold: list[str], repeats: int, work: Path, s: Settings) -> dict[str, Any]:
    """`make check` latency: `make check RECIPE=<name>` cold (a new process, imports included; counted only when it
    passes) and warm in-process checks per recipe."""
    from bench.pipeline import cold_check
    from launch.preflight.checks import run_checks

    runs = {name: cold_check(name, work) for name in cold}
    cold_s = {name: seconds for name, (seconds, _) in runs.items()}
    run_checks(recipes[0], s)  # warm the imports once
    warm = {}
    for name in recipes:

        def once(n=name) -> float:
            t = time.perf_counter()
            run_checks(n, s)
            return time.perf_counter() - t

        warm[name] = repeat(once, repeats)
    return {"cold_cli_s": cold_s, "cold_cli_summary": {name: line for name, (_, line) in runs.items()}, "warm_s": warm}


def judge_throughput(
    concurrencies: list[int], requests: int, repeats: int, work: Path, s: Settings, latency_s: float = 0.2
) -> dict[str, Any]:
    """Requests/s of the judge harness (eval.judge.judge_all: threads, retries, the cache file) against a local
    OpenAI-compatible server that answers each request after `latency_s`, as an API judge does; the ideal at
    concurrency c is c / latency_s, so the figure shows what the harness loses."""
    from bench.latency_server import LatencyServer
    from eval.judge import Judge, judge_all

    items = [
        {"item": f"q{i}", "suite": "bench", "config": "latency", "prompt": f"What is wonder? ({i})"}
        for i in range(max(1, requests // 2))  # each item is asked in both orders
    ]
    texts = {it["item"]: ("Wonder is surprise at the ordinary.", "Wonder is when you are amazed.") for it in items}
    out: dict[str, Any] = {"requests": 2 * len(items), "latency_s": latency_s, "server": "fixed-latency API stand-in"}
    with LatencyServer(latency_s) as server:
        spec = {"base_url": server.url, "model": "latency", "key_env": None, "structured": "json_schema"}
        judge = Judge("bench", {**spec, "price": {"input": 0, "output": 0}}, s)
        judge.ask("warm-up")
        for c in concurrencies:
            runs = iter(range(repeats))

            def once(c=c, runs=runs) -> float:
                cache = work / f"judge-c{c}-{next(runs)}.jsonl"  # a fresh cache: every request is asked
                t = time.perf_counter()
                counts = judge_all(judge, items, texts, cache, "bench", c)
                seconds = time.perf_counter() - t
                if counts["asked"] != 2 * len(items) or counts["failed"]:
                    raise RuntimeError(f"judge harness at concurrency {c}: {counts}")
                return counts["asked"] / seconds

            out[f"concurrency_{c}"] = repeat(once, repeats)
        out["peak_in_flight"] = server.peak
    low = min(concurrencies)
    for c in concurrencies:
        out[f"speedup_{c}"] = out[f"concurrency_{c}"]["median"] / out[f"concurrency_{low}"]["median"]
    return out


__all__ = ["train_vs_baseline", "preflight", "judge_throughput", "spread"]
