"""`make bench`: CPU measurements on every machine, GPU measurements where CUDA is present; writes
outputs/bench/<UTC timestamp>/report.md + report.json + PNG. Ratios are ours / baseline, taken in one run.
BENCH_QUICK=1 runs the same code paths with tiny sizes (the smoke test in `make test`)."""

from __future__ import annotations

import argparse
import platform
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import cpu, gpu
from bench.measure import spread
from core import atomic, cli, settings
from core.paths import outputs_dir
from core.provenance import hardware, package_versions
from launch.recipe.registry import list_recipes, load_recipe


def combine(samples: list[dict[str, Any]]) -> dict[str, Any]:
    """Repeats of a nested dict of numbers -> the same shape with min/median/max at each number."""
    first = samples[0]
    if isinstance(first, dict):
        return {k: combine([s[k] for s in samples]) for k in first}
    if isinstance(first, (int, float)) and not isinstance(first, bool):
        return spread([float(s) for s in samples])
    return first


def med(x: Any) -> Any:
    return x["median"] if isinstance(x, dict) and "median" in x else x


def measure(quick: bool, work: Path, repeats: int, log=print) -> dict[str, Any]:
    steps = 2 if quick else int(load_recipe(cpu.DEFAULT).config["max_steps"])  # >1: warmup starts at lr 0
    trainings, pipes = [], []
    for i in range(repeats):
        log(f"training {i + 1}/{repeats}: our default recipe vs the seed-style TRL baseline, {steps} steps each")
        trainings.append(cpu.train_vs_baseline(steps, work / f"train{i}"))
    training = {
        **combine([{k: t[k] for k in ("ours", "baseline")} for t in trainings]),
        "steps": steps,
        "run": trainings[0]["run"],
    }
    log("padding vs packing on the Brie data")
    pack = cpu.packing()
    log("preflight latency")
    recipes = list_recipes()[:2] if quick else list_recipes()
    pre = cpu.preflight(
        recipes,
        recipes[:1] if quick else [cpu.DEFAULT, "llama31-8b-instruct", "gemma3-27b"],
        1 if quick else 3,
        work,
    )
    for i, t in enumerate(trainings):
        log(f"pipeline stages {i + 1}/{repeats}: merge, gguf convert + quantize, eval")
        pipes.append(
            cpu.pipeline(
                Path(t["run"]), ["Q8_0"] if quick else ["Q8_0", "Q4_K_M"], 1 if quick else 8, work / f"pipe{i}"
            )
        )
    pipe = combine(pipes)
    log("judge harness throughput against a local llama.cpp server")
    judge = cpu.judge_throughput([1, 2] if quick else [1, 4, 8], 2 if quick else 8, 1 if quick else 3, work)
    log("GPU part")
    gpu_part = gpu.run_gpu(2 if quick else 20, work / "gpu")
    return {
        "quick": quick,
        "training": training,
        "packing": pack,
        "preflight": pre,
        "pipeline": pipe,
        "judge": judge,
        "gpu": gpu_part,
    }


def ratio(a: float | None, b: float | None) -> str:
    return f"{a / b:.2f}x" if a and b else "-"


def mmm(x: dict[str, Any], fmt: str = "{:.2f}") -> str:
    """'median (min-max)' of a spread."""
    return fmt.format(x["median"]) + (f" ({fmt.format(x['min'])}-{fmt.format(x['max'])})" if x["n"] > 1 else "")


def targets(r: dict[str, Any]) -> list[tuple[str, str, str]]:
    pack = r["packing"]["packed_real_share"]
    cold = max(r["preflight"]["cold_cli_s"].values())
    default_pipeline = med(r["training"]["ours"]["wall_s"]) + sum(med(v) for v in r["pipeline"]["stages"].values())
    rows = [
        ("packing efficiency >= 95 % on the Brie data", f"{pack:.1%}", "yes" if pack >= 0.95 else "no"),
        (
            "preflight <= 30 s per recipe (cold CLI, imports included)",
            f"{cold:.1f} s (slowest)",
            "yes" if cold <= 30 else "no",
        ),
        (
            "default pipeline <= 10 min on 2 cores (train + merge + gguf + eval)",
            f"{default_pipeline / 60:.1f} min" + (" (quick mode: not the full recipe)" if r["quick"] else ""),
            "yes" if default_pipeline <= 600 and not r["quick"] else ("-" if r["quick"] else "no"),
        ),
    ]
    g = r["gpu"]
    h100 = [x for x in g.get("results", []) if x.get("recipe") == "llama31-8b-instruct" and "H100" in x.get("gpu", "")]
    if h100 and h100[0].get("ours", {}).get("mfu"):
        x = h100[0]
        rows.append(
            (
                "H100: llama31-8b-instruct LoRA >= 45 % MFU",
                f"{x['ours']['mfu']:.1%}",
                "yes" if x["ours"]["mfu"] >= 0.45 else "no",
            )
        )
        sp = x["ours"]["tokens_per_s"] / x["baseline"]["tokens_per_s"]
        rows.append(("H100: >= 2.5x the baseline's tokens/s", f"{sp:.2f}x", "yes" if sp >= 2.5 else "no"))
    else:
        rows += [
            ("H100: llama31-8b-instruct LoRA >= 45 % MFU", g.get("status", "not measured"), "-"),
            ("H100: >= 2.5x the baseline's tokens/s", g.get("status", "not measured"), "-"),
        ]
    return rows


def markdown(r: dict[str, Any], meta: dict[str, Any]) -> str:
    t, o, b = r["training"], r["training"]["ours"], r["training"]["baseline"]
    hw = meta["hardware"]
    out = [
        "# Benchmark report",
        "",
        f"- machine: {hw['cpu']} x {hw['cpu_count']} cores, {hw.get('ram_gb')} GB RAM, GPUs: {hw['gpus'] or 'none'}",
        "- versions: " + ", ".join(f"{k} {v}" for k, v in meta["packages"].items()),
        f"- command: `{meta['command']}`",
        f"- date: {meta['date']}" + (" (QUICK mode: tiny sizes, a smoke run, not a measurement)" if r["quick"] else ""),
        "",
        "## Targets",
        "",
        "| target | measured | reached |",
        "|---|---|---|",
    ]
    out += [f"| {a} | {m} | {ok} |" for a, m, ok in targets(r)]
    out += [
        "",
        f"## Training: default recipe vs the seed-style baseline ({t['steps']} steps, same model, data, LoRA, batch)",
        "",
        "| figure, median (min-max) | ours (axolotl recipe, CPU profile) | baseline (plain TRL SFTTrainer, no packing) | ours / baseline (medians) |",
        "|---|---|---|---|",
        f"| s/step | {mmm(o['s_per_step'])} | {mmm(b['s_per_step'])} | {ratio(med(o['s_per_step']), med(b['s_per_step']))} |",
        f"| tokens/s | {mmm(o['tokens_per_s'], '{:.0f}')} | {mmm(b['tokens_per_s'], '{:.0f}')} | {ratio(med(o['tokens_per_s']), med(b['tokens_per_s']))} |",
        f"| peak RSS (GB) | {mmm(o['peak_rss_gb'])} | {mmm(b['peak_rss_gb'])} | {ratio(med(o['peak_rss_gb']), med(b['peak_rss_gb']))} |",
        f"| wall incl. start-up (s) | {mmm(o['wall_s'], '{:.0f}')} | {mmm(b['wall_s'], '{:.0f}')} | {ratio(med(o['wall_s']), med(b['wall_s']))} |",
        "",
        f"On CPU both train without packing in fp32 with eager attention (the CPU profile), so the ratio shows "
        f"overheads only; the fast path (packing, flash-attention, Liger) is a GPU measurement. Tokens: ours = {o['tokens_method']}; "
        f"baseline = {b['tokens_method']}. Our peak RSS is the whole `make train` process tree: the launcher (which ran "
        f"the preflight, importing axolotl) plus axolotl's training process.",
        "",
        f"## Padding vs packing ({r['packing']['source']}, sequence_len {r['packing']['sequence_len']})",
        "",
        f"- padded batches of {r['packing']['micro_batch']} (the seeds' way): {r['packing']['padded_real_share']:.1%} of tokens are real",
        f"- first-fit-decreasing packing: {r['packing']['packed_real_share']:.1%} real ({r['packing']['dropped_over_length']} records over the length dropped)",
        "",
        "## Preflight (`make check`) latency",
        "",
        "| recipe | seconds (min / median / max) |",
        "|---|---|",
    ]
    out += [f"| {n} (cold CLI) | {s:.1f} |" for n, s in r["preflight"]["cold_cli_s"].items()]
    out += [
        f"| {n} (warm, in process) | {v['min']:.2f} / {v['median']:.2f} / {v['max']:.2f} |"
        for n, v in r["preflight"]["warm_s"].items()
    ]
    p = r["pipeline"]
    out += [
        "",
        "## Pipeline stages of the default recipe (after set-up)",
        "",
        "| stage | seconds |",
        "|---|---|",
        f"| train (wall, incl. start-up) | {mmm(o['wall_s'], '{:.0f}')} |",
    ] + [f"| {k.removesuffix('_s')} | {mmm(v, '{:.1f}')} |" for k, v in p["stages"].items()]
    out += [
        "",
        f"GGUF: f16 {med(p['f16_mb']):.0f} MB converted at {mmm(p['convert_mb_per_s'], '{:.1f}')} MB/s; "
        + ", ".join(f"{q} at {mmm(v['mb_per_s'], '{:.1f}')} MB/s" for q, v in p["quantize"].items())
        + ".",
        "",
        f"## Judge harness throughput (local llama.cpp server, SmolLM2, {r['judge']['requests']} requests)",
        "",
        "| concurrency | requests/s (min / median / max) |",
        "|---|---|",
    ]
    out += [
        f"| {k.split('_')[1]} | {v['min']:.2f} / {v['median']:.2f} / {v['max']:.2f} |"
        for k, v in r["judge"].items()
        if k.startswith("concurrency")
    ]
    out += ["", "## GPU", ""]
    g = r["gpu"]
    if g.get("status") != "measured":
        out.append(g.get("status", "not measured"))
    else:
        out += [
            "| recipe | GPU | ours tokens/s | baseline tokens/s | ratio | ours MFU | peak GB ours / baseline |",
            "|---|---|---|---|---|---|---|",
        ]
        for x in g["results"]:
            if "error" in x:
                out.append(f"| {x['recipe']} | error: {x['error']} | | | | | |")
                continue
            out.append(
                f"| {x['recipe']} (random weights, same shape) | {x['gpu']} | {x['ours']['tokens_per_s']:.0f} | {x['baseline']['tokens_per_s']:.0f} | "
                f"{ratio(x['ours']['tokens_per_s'], x['baseline']['tokens_per_s'])} | {x['ours']['mfu'] or 0:.1%} | "
                f"{x['ours']['peak_gpu_gb']} / {x['baseline']['peak_gpu_gb']} |"
            )
    return "\n".join(out) + "\n"


def plot(r: dict[str, Any], folder: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    stages = {
        "train": med(r["training"]["ours"]["wall_s"]),
        **{k.removesuffix("_s"): med(v) for k, v in r["pipeline"]["stages"].items()},
    }
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 3.8))
    a.barh(list(stages), list(stages.values()), color="#6a8caf")
    a.set_xlabel("seconds")
    a.set_title("default recipe, stage wall time")
    o, bl = r["training"]["ours"], r["training"]["baseline"]
    b.bar(
        ["s/step", "tokens/s", "peak RSS"],
        [med(o[k]) / med(bl[k]) for k in ("s_per_step", "tokens_per_s", "peak_rss_gb")],
        color="#b07a40",
    )
    b.axhline(1.0, color="#999", linestyle="--")
    b.set_title("ours / seed-style baseline (CPU)")
    fig.tight_layout()
    fig.savefig(folder / "bench.png", dpi=100)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes, a smoke run (default: BENCH_QUICK)")
    parser.add_argument("--repeats", type=int, default=None, help="(default: REPEATS, else 2; 1 when quick)")
    ns = parser.parse_args(argv)

    def body() -> None:
        s = settings.load()
        ns.quick = ns.quick or s.bench_quick
        repeats = ns.repeats or s.repeats or (1 if ns.quick else 2)
        folder = outputs_dir() / "bench" / datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
            result = measure(ns.quick, Path(tmp), repeats)
        result["training"].pop("run", None)
        meta = {
            "hardware": hardware(),
            "packages": package_versions(),
            "python": platform.python_version(),
            "command": " ".join(["make bench"] + (["BENCH_QUICK=1"] if ns.quick else []) + [f"REPEATS={repeats}"]),
            "repeats": repeats,
            "date": datetime.now(UTC).isoformat(),
        }
        folder.mkdir(parents=True, exist_ok=True)
        atomic.write_text(folder / "report.md", markdown(result, meta))
        atomic.write_json(folder / "report.json", {"meta": meta, **result})
        plot(result, folder)
        print((folder / "report.md").read_text())
        print(f"written: {folder}/report.md report.json bench.png", file=sys.stderr)

    return cli.main(body)


if __name__ == "__main__":
    sys.exit(main())
