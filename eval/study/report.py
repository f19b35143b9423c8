"""`make study-report STUDY=studies/x.yaml`: the study's report from whatever is finished so far, as markdown +
PNGs and one self-contained HTML page (eval/study/html.py) with the same content plus the generations side by
side. Written to OUTPUTS/studies/<study>/report/ (report.md, report.html, report.json, *.png)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from core import atomic, cli, metrics
from core.errors import UserError, Where
from core.settings import Settings
from eval import leaderboard, plots, stats
from eval.study import analysis as analysis_mod
from eval.study import html, spec, state
from eval.study.job import Job, job_for

Block = tuple  # ("h", level, text) | ("p", text) | ("table", (headers, rows)) | ("img", file, alt)


def _f(x: Any) -> str:
    return f"{x:.3f}" if isinstance(x, (int, float)) and x == x else "-"


def runs_table(data: dict[str, Any]) -> leaderboard.Table:
    headers = ["run", "recipe", "overrides", "seed", "status", "steps", "first / final loss", "eval loss", "cost"]
    headers.append("measured: tokens/s, peak memory (plan), MFU")
    rows = []
    for e in data["entries"]:
        t = e["train"]
        cost = "-" if e["cost_usd"] is None else f"${e['cost_usd']:.2f}"
        over = ", ".join(f"{k}={v}" for k, v in e["overrides"].items() if k != "seed") or "-"
        status = e["status"] + (
            f" ({e['error'].splitlines()[0]})" if e["status"] in ("failed", "budget stop") and e["error"] else ""
        )
        losses = f"{_f(t.get('first_loss'))} / {_f(t.get('final_loss'))}"
        seed = "-" if e["seed"] is None else str(e["seed"])
        rows.append([e["key"], e["recipe"], over, seed, status, str(t.get("global_step") or "-"), losses])
        rows[-1] += [_f(t.get("eval_loss")), cost, measured(e.get("run"))]
    return headers, rows


def spend_line(b: dict[str, Any]) -> str:
    """Spend against the cap, and how far past it the cap lets a study go."""
    reached = " (cap reached: live pods were terminated)" if b["spent_usd"] >= b["max_cost"] else ""
    return (
        f"RunPod spend: ${b['spent_usd']:.2f} of MAX_COST ${b['max_cost']:.2f}{reached}, over {b['pods']} pod(s): "
        f"each pod's price times its uptime as RunPod reports them, read every {b['poll_s']:g} s, so the cap can "
        "be overshot by one poll interval times the running pods' price."
    )


def measured(run: str | None) -> str:
    """The run's own tokens/s, peak memory beside the plan, and MFU (its manifest's train.telemetry)."""
    from pathlib import Path

    from core import manifest
    from core.errors import UserError
    from launch.telemetry_record import cell

    try:
        return cell(manifest.read(Path(run)).train.telemetry) if run else "-"
    except UserError:
        return "-"


def seeds_table(data: dict[str, Any]) -> leaderboard.Table:
    label = metrics.get(metrics.PRIMARY).label
    headers = ["configuration", f"{label} per seed", "mean", "SD between seeds", "range", "mean 95 % CI width (docs)"]
    rows = []
    for s in data["seeds"]:
        per = ", ".join(f"seed {k}: {_f(v)}" for k, v in s["seeds"].items())
        rows.append([s["config"], per, _f(s["mean"]), _f(s["sd"]), f"{_f(s['range'][0])} - {_f(s['range'][1])}"])
        rows[-1].append(_f(s["doc_ci_width"]))
    return headers, rows


def blocks(data: dict[str, Any], images: list[str]) -> list[Block]:
    entries = data["entries"]
    done = sum(e["status"] == "done" for e in entries)
    out: list[Block] = [("h", 1, f"Study: {data['study']}")]
    if data["description"]:
        out.append(("p", data["description"]))
    counts = {k: sum(e["status"] == k for e in entries) for k in ("failed", "budget stop", "not started")}
    extra = ", ".join(f"{v} {k}{'s' if k == 'budget stop' and v > 1 else ''}" for k, v in counts.items() if v)
    out += [("p", f"{done} of {len(entries)} runs finished" + (f"; {extra}" if extra else "") + ".")]
    if data.get("budget"):
        out += [("p", spend_line(data["budget"]))]
    out += [("h", 2, "Runs"), ("table", runs_table(data))]
    if data["models"]:
        h = data["heldout"]
        out += [("h", 2, "Held-out generation (lm-eval)"), ("p", leaderboard.heldout_note(h))]
        out += [("p", stats.INTERVALS_NOTE), ("table", leaderboard.heldout_table(data["models"], h))]
        out += [("img", "metrics.png", "held-out metrics with 95 % intervals")] if "metrics.png" in images else []
        pairs = leaderboard.pairwise_table(h)
        if pairs[1]:
            out += [("h", 3, f"Every pair on {metrics.get(metrics.PRIMARY).label}"), ("table", pairs)]
            out += [("img", "significance.png", "pairwise significance matrix")] if "significance.png" in images else []
    if data["seeds"]:
        out += [("h", 2, "Seed repeats: run-to-run spread")]
        out += [("p", "Each seed is its own run above; the spread between them is shown here, not averaged away.")]
        out += [("table", seeds_table(data))]
    if data["judged"]:
        out += [
            ("h", 2, "Blind pairwise judging vs each base model"),
            ("p", f"Tie convention: {stats.TIE_CONVENTION}."),
        ]
        out += [("table", leaderboard.judge_table(data["judged"]))]
        out += [("img", "win_rates.png", "judge win rates with Wilson intervals")] if "win_rates.png" in images else []
        for e in entries:
            a = e.get("agreement")
            if a:
                kappas = ", ".join(f"{pair} {k:.2f}" for pair, k in a["cohen_kappa"].items())
                out.append(("p", f"{e['key']}: {a['items']} items; Cohen's kappa {kappas}; all agree {a['all_agree']}"))
    if "cost_quality.png" in images:
        out += [("h", 2, "Cost against quality"), ("img", "cost_quality.png", "cost against quality")]
    if "loss_curves.png" in images:
        out += [("h", 2, "Loss curves"), ("p", "Solid: training loss; dashed: held-out eval loss.")]
        out += [("img", "loss_curves.png", "loss curves with eval loss")]
    return out


def markdown(items: list[Block]) -> str:
    out: list[str] = []
    for b in items:
        if b[0] == "h":
            out += ["#" * b[1] + " " + b[2], ""]
        elif b[0] == "p":
            out += [b[1], ""]
        elif b[0] == "table":
            out += leaderboard.md_table(b[1]) + [""]
        elif b[0] == "img":
            out += [f"![{b[2]}]({b[1]})", ""]
    return "\n".join(out)


def build(study: spec.Study, runs: list[spec.StudyRun], jobs: dict[str, Job], paths: state.StudyPaths) -> Path:
    data = analysis_mod.gather(study, runs, jobs, paths)
    folder = paths.report
    scores = {}
    for group in data["heldout"]["groups"]:
        scores.update(group["metrics"][metrics.PRIMARY]["scores"])
    costs = [(e["key"], e["cost_usd"], scores.get(f"{e['key']} (hf)")) for e in data["entries"]]
    curves = [(e["key"], *e["loss"]) for e in data["entries"]]
    images = plots.write_all(
        folder, data["models"], data["heldout"], [(f"{k} / {j}", s) for k, j, s in data["judged"]], curves, costs
    )
    items = blocks(data, images)
    atomic.write_text(folder / "report.md", markdown(items))
    atomic.write_text(folder / "report.html", html.page(f"Study: {study.name}", items, folder, data))
    atomic.write_json(folder / "report.json", {k: v for k, v in data.items() if k != "models"})
    return folder


def load(
    study_file: str | None, s: Settings
) -> tuple[spec.Study, list[spec.StudyRun], dict[str, Job], state.StudyPaths]:
    if not study_file:
        raise UserError("no study given", Where(key="STUDY"), "make study STUDY=studies/<name>.yaml (ls studies/)")
    path = Path(study_file)
    study, runs = spec.load(path)
    repo = s.study_repo or study.hub_repo
    return study, runs, {r.key: job_for(study, r, path, repo) for r in runs}, state.StudyPaths.of(study, s.outputs)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("study", nargs="?", help="the study file (default: STUDY)")
    ns = parser.parse_args(argv)

    def body(s: Settings) -> None:
        study, runs, jobs, paths = load(ns.study or s.study, s)
        folder = build(study, runs, jobs, paths)
        print((folder / "report.md").read_text())
        print(f"report: {folder / 'report.md'} and {folder / 'report.html'}")

    return cli.main(body)


if __name__ == "__main__":
    sys.exit(main())
