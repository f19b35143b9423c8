"""`make bench`: CPU measurements on every machine; writes outputs/bench/<UTC timestamp>/report.md + report.json +
PNG. Ratios are ours / baseline, taken in one run. BENCH_QUICK=1 runs the same code paths with tiny sizes (the
smoke test in `make test`). The GPU is measured by `make gpu-check` (bench/gpu_check.py), whose report the GPU
section points to."""

from __future__ import annotations

import argparse
import platform
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import cpu, packing, pipeline
from bench.measure import spread
from core import atomic, cli, settings
from core.provenance import hardware, package_versions
from core.settings import Settings
from resolver.registry import list_recipes, load_recipe


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


def measure(quick: bool, work: Path, repeats: int, s: Settings, log=print) -> dict[str, Any]:
    steps = 2 if quick else int(load_recipe(cpu.DEFAULT).config["max_steps"])  # >1: warmup starts at lr 0
    trainings, pipes = [], []
    for i in range(repeats):
        log(f"training {i + 1}/{repeats}: our default recipe vs the seed-style TRL baseline, {steps} steps each")
        trainings.append(cpu.train_vs_baseline(steps, work / f"train{i}", s))
    keep = ("ours", "baseline")
    training = {**combine([{k: t[k] for k in keep} for t in trainings]), "steps": steps, "run": trainings[0]["run"]}
    log("padding vs packing on the Brie data (axolotl's tokenization and multipack sampler)")
    pack = packing.measure(s, work=work / "packing")
    log("preflight latency")
    recipes = list_recipes()[:2] if quick else list_recipes()
    cold = [cpu.DEFAULT] if quick else [cpu.DEFAULT, "llama31-8b-instruct", "gemma3-27b"]
    pre = cpu.preflight(recipes, cold, 1 if quick else 3, work, s)
    log("cold CLI: make check of the default recipe, and bad-input refusals, each through make")
    cli_s = pipeline.cli_latency(1 if quick else 3, work / "cli")
    for i, t in enumerate(trainings):
        log(f"the default pipeline as a user runs it {i + 1}/{repeats}: make train, merge, gguf, eval")
        # quick: the pipeline goes on from the comparison's own `make train` (one training less in make test)
        outputs, train = (Path(t["outputs"]), t["make"]) if quick else (work / f"pipe{i}", None)
        pipes.append(pipeline.pipeline(quick, outputs, train, log))
    pipe = combine(pipes)
    pipe["base_gguf_built"] = [p["eval"]["base_gguf_built"] for p in pipes]
    if quick:
        pipe["stages"]["train"]["command"] = trainings[0]["make"]["command"]
    log("judge harness throughput against a local fixed-latency OpenAI-compatible server")
    judge = cpu.judge_throughput([1, 2] if quick else [1, 4, 8], 4 if quick else 32, 1 if quick else 3, work, s)
    gpu_part = {"status": "not measured by make bench: make gpu-check measures the GPU (docs/bench.md, The GPU check)"}
    return {
        "quick": quick,
        "training": training,
        "packing": pack,
        "preflight": pre,
        "cli": cli_s,
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
    pack = r["packing"].get("packed_real_share")
    cold = max(r["preflight"]["cold_cli_s"].values())
    stages, quick, t = r["pipeline"]["stages"], r["quick"], pipeline.TARGETS_S
    total = sum(med(v["seconds"]) for v in stages.values())
    check = r["cli"]["check"]
    slowest = max(r["cli"]["refusals"], key=lambda k: r["cli"]["refusals"][k]["median"])
    refusal = r["cli"]["refusals"][slowest]["median"]
    rows = [
        (
            "packing efficiency >= 95 % on the Brie data (axolotl's multipack sampler)",
            f"{pack:.1%}" if pack is not None else r["packing"]["status"],
            ("yes" if pack >= 0.95 else "no") if pack is not None else "-",
        ),
        (
            "preflight <= 30 s per recipe (cold `make check`, imports included)",
            f"{cold:.1f} s (slowest)",
            "yes" if cold <= 30 else "no",
        ),
        (
            f"`{check['command']}` cold <= {t['check']:g} s (median of {check['n']})",
            f"{check['median']:.1f} s",
            "yes" if check["median"] <= t["check"] else "no",
        ),
        (
            f"a bad-input refusal <= {t['refusal']:g} s, process start included (median of each)",
            f"{refusal:.1f} s (slowest: {slowest})",
            "yes" if refusal <= t["refusal"] else "no",
        ),
        (
            f"default pipeline <= {t['pipeline'] / 60:g} min after set-up (make train + merge + gguf + eval, medians)",
            f"{total / 60:.1f} min" + (" (quick mode: not the defaults)" if quick else ""),
            ("yes" if total <= t["pipeline"] else "no") if not quick else "-",
        ),
    ]
    j, top = r["judge"], max(int(k.split("_")[1]) for k in r["judge"] if k.startswith("speedup_"))
    rows.append(
        (
            "judge harness >= 6x the requests/s at concurrency 8 as at 1 (fixed-latency server)",
            f"{j[f'speedup_{top}']:.1f}x at {top}" + (" (quick mode)" if r["quick"] else ""),
            "yes" if top >= 8 and j["speedup_8"] >= 6 else ("-" if r["quick"] else "no"),
        )
    )
    g = r["gpu"]
    rows += [
        ("H100: llama31-8b-instruct LoRA >= 45 % MFU", g["status"], "-"),
        ("H100: >= 2.5x the baseline's tokens/s", g["status"], "-"),
    ]
    return rows


def packing_lines(pk: dict[str, Any]) -> list[str]:
    """Padding vs packing, both measured on axolotl's own tokenization of the Brie data (bench/packing.py)."""
    if pk.get("status") != "measured":
        return ["", "## Padding vs packing", "", pk.get("status", "not measured")]
    return [
        "",
        f"## Padding vs packing ({pk['source']}, sequence_len {pk['sequence_len']})",
        "",
        f"- padded batches of {pk['micro_batch']} (the seeds' way): {pk['padded_real_share']:.1%} of tokens are real",
        f"- axolotl's multipack sampler ({pk['sampler']}): {pk['packed_real_share']:.1%} real "
        f"({pk['samples']} samples in {pk['packed_rows']} packed rows; axolotl drops rows over the length itself)",
    ]


def cli_lines(c: dict[str, Any]) -> list[str]:
    """Cold commands through make, each counted only when it did its work (bench/pipeline.py)."""
    out = ["", "## Cold commands as a user types them (a new process each, imports included)", ""]
    out += ["| command | seconds, median (min-max) | counted when |", "|---|---|---|"]
    out.append(f"| `{c['check']['command']}` | {mmm(c['check'], '{:.1f}')} | it printed `OK: 0 errors` |")
    out += [f"| `{k}` | {mmm(v, '{:.1f}')} | exit 2, the error naming the input |" for k, v in c["refusals"].items()]
    return out


def pipeline_lines(p: dict[str, Any], quick: bool) -> list[str]:
    """The default pipeline, each stage the user's own make command (bench/pipeline.py)."""
    out = ["", "## The default pipeline as a user runs it (after set-up)", ""]
    out += ["| stage | command | seconds, median (min-max) |", "|---|---|---|"]
    out += [f"| {k} | `{v['command']}` | {mmm(v['seconds'], '{:.1f}')} |" for k, v in p["stages"].items()]
    total = sum(med(v["seconds"]) for v in p["stages"].values())
    out += ["", f"Total (medians): {total:.0f} s = {total / 60:.1f} min."]
    if quick:
        out.append(
            "Quick mode: train is the comparison's run (its ARGS above); "
            + "; ".join(
                f"{k} with {' '.join(f'{a}={b}' for a, b in v.items())}" for k, v in pipeline.QUICK.items() if v
            )
            + ". Without BENCH_QUICK every command is the user's, with no variable set."
        )
    out.append(pipeline.note(p))
    built = p["base_gguf_built"]
    if any(built):
        out.append(f"Repeats that converted the base model's GGUF: {[i + 1 for i, b in enumerate(built) if b]}.")
    g = p["gguf"]
    f16 = med(g["mb"][g["outtype"]])
    rates = [
        f"{'conversion' if k == 'convert' else k + ' quantization'} {f16 / med(v):.0f} MB/s"
        for k, v in g.get("phases_s", {}).items()
        if med(v)
    ]
    out += [
        "",
        f"GGUF: the {g['outtype']} file is {f16:.0f} MB; " + ", ".join(rates) + " (from make gguf's own lines).",
    ]
    return out


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
        f"Ours is `{o['command']}`: the recipe as it is but for the steps and in-training evaluation, which the "
        "baseline does not do. "
        f"On CPU both train without packing in fp32 with eager attention (the CPU profile), so the ratio shows "
        f"overheads only; the fast path (packing, flash-attention, Liger) is a GPU measurement. Tokens: ours = {o['tokens_method']}; "
        f"baseline = {b['tokens_method']}. Our peak RSS is the whole `make train` process tree: the launcher (which ran "
        f"the preflight, importing axolotl) plus axolotl's training process.",
    ]
    out += packing_lines(r["packing"])
    out += [
        "",
        "## Preflight (`make check`) latency",
        "",
        "| recipe | seconds (min / median / max) |",
        "|---|---|",
    ]
    out += [f"| {n} (cold `make check`) | {s:.1f} |" for n, s in r["preflight"]["cold_cli_s"].items()]
    out += [
        f"| {n} (warm, in process) | {v['min']:.2f} / {v['median']:.2f} / {v['max']:.2f} |"
        for n, v in r["preflight"]["warm_s"].items()
    ]
    out += cli_lines(r["cli"])
    out += pipeline_lines(r["pipeline"], r["quick"])
    out += [
        "",
        f"## Judge harness throughput ({r['judge']['requests']} requests through eval.judge.judge_all, a local "
        f"OpenAI-compatible server answering each after {r['judge']['latency_s']:g} s, as an API judge does)",
        "",
        "| concurrency | requests/s (min / median / max) | ideal (concurrency / latency) | speedup vs 1 |",
        "|---|---|---|---|",
    ]
    out += [
        f"| {k.split('_')[1]} | {v['min']:.2f} / {v['median']:.2f} / {v['max']:.2f} | "
        f"{int(k.split('_')[1]) / r['judge']['latency_s']:.1f} | {r['judge']['speedup_' + k.split('_')[1]]:.1f}x |"
        for k, v in r["judge"].items()
        if k.startswith("concurrency")
    ]
    out += [
        "",
        "A local llama.cpp server (`make serve`) answers one request at a time, so against it concurrency only "
        "queues requests; the harness figure above is what a concurrent API judge gets.",
    ]
    out += ["", "## GPU", ""]
    out.append(r["gpu"]["status"])
    return "\n".join(out) + "\n"


def plot(r: dict[str, Any], folder: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    stages = {k: med(v["seconds"]) for k, v in r["pipeline"]["stages"].items()}
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 3.8))
    a.barh(list(stages), list(stages.values()), color="#6a8caf")
    a.set_xlabel("seconds")
    a.set_title("the default pipeline as a user runs it")
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
    parser.add_argument(
        "--repeats", type=settings.flag_type("REPEATS"), default=None, help="(default: REPEATS, else 2; 1 when quick)"
    )
    ns = parser.parse_args(argv)
    import os

    os.environ.setdefault("AXOLOTL_DO_NOT_TRACK", "1")  # packing runs axolotl in this process; no telemetry offline

    def body(s: Settings) -> None:
        ns.quick = ns.quick or s.bench_quick
        repeats = ns.repeats or s.repeats or (1 if ns.quick else 2)
        folder = s.outputs / "bench" / datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
            result = measure(ns.quick, Path(tmp), repeats, s)
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
