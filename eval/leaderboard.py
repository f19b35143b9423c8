"""`make leaderboard`: every evaluated run (from its manifest) as markdown tables, plus PNG plots: metrics with
95 % error bars, judge win rates with Wilson CIs, loss curves (train and held-out eval loss) from TensorBoard.

No strict rank: every held-out score carries its 95 % bootstrap interval over documents, every model sits
beside its base model's score on the same documents (difference, interval, paired test), and models are
placed in tiers by a paired test on the same documents, Holm-corrected (eval/stats.py). A Q4_K_M GGUF that
scores a little above its f16 source on 8 documents shares its tier; it is not ranked above it. The study
report (eval/study) is built from the same tables and plots."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from core import atomic, cli, manifest, mdtable, metrics, rundir
from core.errors import UserError
from core.settings import Settings
from eval import chain, lmeval, stats
from eval.lmeval import read_samples
from launch import telemetry_record

Table = tuple[list[str], list[list[str]]]


def loss_curves(run: Path) -> dict[str, list[tuple[int, float]]]:
    """Train and held-out eval loss per step, from the run's TensorBoard events."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    found: dict[str, set] = {"train": set(), "eval": set()}
    for events in sorted((run / "output" / "runs").rglob("events.out.tfevents.*")):
        acc = EventAccumulator(str(events))
        acc.Reload()
        tags = acc.Tags().get("scalars", [])
        for kind, tag in (("train", "train/loss"), ("eval", "eval/loss")):
            if tag in tags:
                found[kind] |= {(e.step, e.value) for e in acc.Scalars(tag)}
    return {k: sorted(v) for k, v in found.items()}


def loss_curve(run: Path) -> list[tuple[int, float]]:
    return loss_curves(run)["train"]


def run_models(run: Path, label: str) -> list[dict[str, Any]]:
    """The run's evaluated models (one per backend, and its base model when scored) with per-document rows."""
    m = manifest.read(run)
    if not m.lm_eval:
        return []
    # a base model scored through its GGUF is another measurement than through transformers: its own row
    via = ", llama.cpp" if m.lm_eval.base and (m.lm_eval.base.engine or "").startswith("llama.cpp") else ""
    base_name = f"{m.train.base_model.name} (base{via})" if m.train.base_model else f"base model{via}"
    out = []
    results = [*m.lm_eval.results, *([m.lm_eval.base] if m.lm_eval.base else [])]
    for r in results:
        is_base = r.backend == "base"
        rel = m.lm_eval.samples.get(r.backend)
        out.append(
            {
                "name": base_name if is_base else f"{label} ({r.backend})",
                "run": label,
                "base": m.train.base_model.name if m.train.base_model else "",
                "backend": r.backend,
                "engine": r.engine,  # what produced the row (transformers or llama.cpp on which file)
                "metrics": r.metrics,
                "rows": _rows(run, rel),
                "base_row": None if is_base or not m.lm_eval.base else base_name,
            }
        )
    return out


def _rows(run: Path, rel: str | None) -> list[dict[str, Any]]:
    """Per-document rows, or none (an older run, or a file gone): that model is shown without intervals."""
    if not rel:
        return []
    try:
        return read_samples(run, rel)
    except UserError:
        return []


def dedupe(models: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per model: a base model scored by several runs on the same documents appears once."""
    seen: dict[str, tuple] = {}
    out = []
    for e in models:
        docs = tuple(sorted(r["doc"] for r in e["rows"]))
        if e["name"] in seen:
            if seen[e["name"]] == docs:
                continue
            e = {**e, "name": f"{e['name']} [{e['run']}]"}
        seen[e["name"]] = docs
        out.append(e)
    names = {e["name"] for e in out}
    for e in out:  # a base row renamed for other documents: point its fine-tunes at the renamed row
        if e["base_row"] and e["base_row"] not in names:
            e["base_row"] = f"{e['base_row']} [{e['run']}]"
    return out


def analyze(models: list[dict[str, Any]]) -> dict[str, Any]:
    scored = {e["name"]: e["rows"] for e in models if e["rows"]}
    return stats.heldout(scored, {e["name"]: e["base_row"] for e in models if e["base_row"] and e["rows"]})


def collect(outputs: Path) -> list[dict[str, Any]]:
    rows = []
    for run in rundir.completed_runs(outputs):
        m = manifest.read(run)
        t = m.train
        label = f"{m.recipe_name}/{run.name}"
        curves = loss_curves(run)
        rows.append(
            {
                "run": label,
                "recipe": m.recipe_name,
                "base": t.base_model.name,
                "params_b": t.meta.params_b,
                "train": t.summary.model_dump() if t.summary else {},
                "telemetry": t.telemetry.model_dump() if t.telemetry else None,
                "results": [r.model_dump() for r in m.lm_eval.results] if m.lm_eval else [],
                "models": run_models(run, label),
                # each judge's figures, with how both sides' answers were generated (eval/generate.py backend_key)
                "judges": {k: {**v, "backends": m.judge.backends} for k, v in m.judge.judges.items()}
                if m.judge
                else {},
                "loss": curves["train"],
                "eval_loss": curves["eval"],
                **chain_fields(run, m),
            }
        )
    return rows


def chain_fields(run: Path, m) -> dict[str, Any]:
    """For the chain table: the runs from the root to this one, the root's base model and the primary held-out
    score of each (this run's fine-tune, and the base model on the same documents)."""
    try:
        links = chain.links(run)
    except UserError:
        return {}
    primary = metrics.PRIMARY

    def hf(mf) -> float | None:  # the fine-tune's row: transformers', else its unquantized GGUF's
        row = lmeval.primary(mf.lm_eval)
        return row.metrics.get(primary) if row else None

    base = m.lm_eval.base.metrics.get(primary) if m.lm_eval and m.lm_eval.base else None
    return {
        "chain": [link.label for link in links],
        "origin": links[0].manifest.train.base_model.name,
        "origin_score": base,
        "score": hf(m),
    }


# --- tables ------------------------------------------------------------------------------------------------


def md_table(table: Table) -> list[str]:
    headers, rows = table
    return mdtable.table(headers, rows)


def pct(x: float | None) -> str:
    return "-" if x is None or x != x else f"{100 * x:.1f} %"


def with_ci(metric: metrics.Metric, value: float | None, ci: list[float] | None) -> str:
    if value is None or value != value:
        return "-"
    if not ci or ci[0] != ci[0]:
        return f"{metric.show(value)} (no CI: n < 2)"
    return f"{metric.show(value)} [{metric.show(ci[0])}, {metric.show(ci[1])}]"


def signed(x: float | None) -> str:
    """A difference to 3 decimals with its sign; a difference that rounds to zero is +0.000, not -0.000."""
    if x is None or x != x:
        return "-"
    return f"{round(x, 3) + 0.0:+.3f}"


def p_text(p: float | None) -> str:
    return "-" if p is None or p != p else f"{p:.3g}"


def made_by(e: dict[str, Any]) -> str:
    """The backend column: the backend and, where recorded, the engine that produced the row."""
    return f"{e['backend']} ({e['engine']})" if e.get("engine") else e["backend"]


def heldout_table(models: list[dict[str, Any]], analysis: dict[str, Any], primary: str = metrics.PRIMARY) -> Table:
    """Tier, model, every shown metric with its interval, the difference from the base model, letters."""
    shown = list(metrics.on_leaderboard())
    p = metrics.get(primary)
    headers = ["tier", "run", "base model", "backend", "docs", *(f"{m.label} (95 % CI)" for m in shown)]
    headers += [f"Δ {p.label} vs base [95 % CI], p (Holm)", "letters"]
    by_name = {e["name"]: e for e in models}
    out = []
    for g, group in enumerate(analysis["groups"]):
        res = group["metrics"][primary]
        order = sorted(group["models"], key=lambda n: (res["tiers"][n], -res["scores"][n]["estimate"]))
        prefix = f"{'ABCDEFGH'[g % 8]}" if len(analysis["groups"]) > 1 else ""
        for name in order:
            e = by_name[name]
            cells = [
                with_ci(
                    m,
                    group["metrics"][m.name]["scores"][name]["estimate"],
                    group["metrics"][m.name]["scores"][name]["ci95"],
                )
                for m in shown
            ]
            vs = analysis["vs_base"].get(name, {}).get(primary)
            delta = (
                f"{signed(vs['diff'])} [{signed(vs['ci95'][0])}, {signed(vs['ci95'][1])}], p {p_text(vs['p_holm'])}"
                + (" (distinguishable)" if vs["distinguishable"] else " (not distinguishable)")
                if vs
                else ("(this is the base model)" if e["backend"] == "base" else "base not scored")
            )
            run = e["run"] if e["backend"] != "base" else f"base: {e['base']}"
            tier = f"{prefix}{res['tiers'][name]}"
            out.append([tier, run, e["base"], made_by(e), str(group["docs"]), *cells, delta, res["letters"][name]])
    for e in models:
        if not e["rows"]:
            out.append(
                [
                    "-",
                    e["run"],
                    e["base"],
                    made_by(e),
                    "-",
                    *(m.show(e["metrics"].get(m.name)) for m in metrics.on_leaderboard()),
                ]
                + ["no per-document scores: re-run make eval for intervals", "-"]
            )
    return headers, out


def pairwise_table(analysis: dict[str, Any], primary: str = metrics.PRIMARY) -> Table:
    p = metrics.get(primary)
    headers = ["model a", "model b", "docs", f"Δ {p.label} (a - b) [95 % CI]", "p", "p (Holm)", "verdict"]
    rows = []
    for group in analysis["groups"]:
        for r in group["metrics"][primary]["pairs"]:
            rows.append(
                [
                    r["a"],
                    r["b"],
                    str(r["n"]),
                    f"{signed(r['diff'])} [{signed(r['ci95'][0])}, {signed(r['ci95'][1])}]",
                    p_text(r["p"]),
                    p_text(r["p_holm"]),
                    "distinguishable" if r["distinguishable"] else "not distinguishable",
                ]
            )
    return headers, rows


def heldout_note(analysis: dict[str, Any]) -> str:
    k = sum(g["metrics"][metrics.PRIMARY]["comparisons"] for g in analysis["groups"])
    return (
        f"Intervals: {stats.INTERVAL}. Pairs: {stats.PAIRED_TEST}, {stats.CORRECTION} over the {k} pair(s) "
        f"of each metric, α = {stats.ALPHA}. Tier 1 holds every model the test cannot tell from the best on "
        f"{metrics.get(metrics.PRIMARY).label}; tier 2 the same among the rest, and so on. Models that share a "
        "letter are not distinguishable. Order within a tier is not a rank."
        + (
            " Letters A/B/.. before a tier: models scored on different documents are never compared."
            if len(analysis["groups"]) > 1
            else ""
        )
    )


def reading(r: dict[str, Any] | None) -> str:
    if not r:
        return "-"
    if r["rate"] is None or r["rate"] != r["rate"]:
        return "no decided pair"
    return f"{pct(r['rate'])} [{pct(r['ci95'][0])}, {pct(r['ci95'][1])}]"


def judge_table(entries: list[tuple[str, str, dict[str, Any]]]) -> Table:
    headers = ["run", "judge", "n", "W / L / T / invalid", "position consistency", "ties excluded [95 % CI]"]
    headers += ["ties as half [95 % CI]", "as published (wins / n) [95 % CI]", "note"]
    rows = []
    for run, judge, s in entries:
        pc = "-" if s.get("position_consistency") is None else pct(s["position_consistency"])
        counts = f"{s['wins']} / {s['losses']} / {s['ties']} / {s['invalid']}"
        usable, why = s.get("usable", True), s.get("usable_note")
        # a run trained on make prefs pairs is judged on the suite's held-out part only (eval/prefs_split.py)
        n = f"{s['n']} held-out of {s['heldout']['of']}" if s.get("heldout") else str(s["n"])
        made = "; ".join(f"{side}: {how}" for side, how in (s.get("backends") or {}).items())
        if not usable:
            rows.append(
                [run, judge, n, counts, pc, "unusable", "unusable", "unusable", "; ".join(filter(None, (why, made)))]
            )
            continue

        published = f"{pct(s['win_rate'])} [{pct(s['ci95'][0])}, {pct(s['ci95'][1])}]"
        note = "; ".join(x for x in (why, "n < 30" if s.get("warning") else None, made) if x)
        rows.append(
            [
                run,
                judge,
                n,
                counts,
                pc,
                reading(s.get("ties_excluded")),
                reading(s.get("ties_half")),
                published,
                note,
            ]
        )
    return headers, rows


def tables(rows: list[dict[str, Any]]) -> str:
    models = dedupe([e for r in rows for e in r["models"]])
    analysis = analyze(models)
    out = ["# Leaderboard", "", "## Held-out generation (lm-eval)", "", heldout_note(analysis), ""]
    out += [stats.INTERVALS_NOTE, ""]
    out += md_table(heldout_table(models, analysis))
    pairs = pairwise_table(analysis)
    if pairs[1]:
        out += ["", f"### Every pair on {metrics.get(metrics.PRIMARY).label}", ""] + md_table(pairs)
    out += ["", "## Blind pairwise judging vs the base model", "", f"Tie convention: {stats.TIE_CONVENTION}.", ""]
    out += md_table(judge_table([(r["run"], j, s) for r in rows for j, s in r["judges"].items()]))
    chained = [r for r in rows if len(r.get("chain") or []) > 1]
    if chained:
        out += ["", "## Chains: base -> SFT -> preference tuning", ""]
        out += [
            "Each step judged against the step before it; reward margins (chosen minus rejected) from training, "
            "for GRPO the mean reward of the first and last logged step.",
            "",
        ]
        out += chain.chain_table(rows, metrics.get(metrics.PRIMARY).label)
    out += [
        "",
        "## Training",
        "",
        "| run | params | steps | first loss | final loss | eval loss | measured: tokens/s, peak memory (plan), MFU |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        t = r["train"]
        f3 = [
            f"{t[k]:.3f}" if isinstance(t.get(k), (int, float)) else "-"
            for k in ("first_loss", "final_loss", "eval_loss")
        ]
        params = f"{r['params_b']:g}B" if r["params_b"] else "-"
        measured = telemetry_record.cell(r.get("telemetry"))
        out.append(mdtable.row([r["run"], params, t.get("global_step"), *f3, measured]))
    return "\n".join(out) + "\n"


def build(outputs: Path) -> dict[str, Any]:
    """OUTPUTS/leaderboard/ from every completed run under `outputs`."""
    from eval import plots

    rows = collect(outputs)
    folder = outputs / "leaderboard"
    folder.mkdir(parents=True, exist_ok=True)
    atomic.write_text(folder / "leaderboard.md", tables(rows))
    models = dedupe([e for r in rows for e in r["models"]])
    images = plots.write_all(
        folder,
        models,
        analyze(models),
        [(f"{r['recipe']} / {j}", s) for r in rows for j, s in r["judges"].items()],
        [(r["run"], r["loss"], r["eval_loss"]) for r in rows],
    )
    atomic.write_json(folder / "leaderboard.json", [{k: v for k, v in r.items() if k != "models"} for r in rows])
    return {"runs": len(rows), "folder": str(folder), "images": images}


def main(argv: list[str] | None = None) -> int:
    argparse.ArgumentParser(description=__doc__.splitlines()[0]).parse_args(argv)

    def body(s: Settings) -> None:
        result = build(s.outputs)
        print((Path(result["folder"]) / "leaderboard.md").read_text())
        print(f"{result['runs']} runs; written to {result['folder']}: leaderboard.md {' '.join(result['images'])}")

    return cli.main(body)


if __name__ == "__main__":
    sys.exit(main())
