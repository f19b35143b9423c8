"""`make leaderboard`: every evaluated run (from its manifest) as markdown tables like the persona log's, plus
PNG plots: metric bars per model, judge win rates with 95 % CI error bars, and loss curves from TensorBoard."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from core import atomic, cli, manifest, metrics, rundir
from core.paths import outputs_dir

METRICS = ("rouge1", "rouge2", "rougeL", "bleu", "jaccard", "exact_match")


def loss_curve(run: Path) -> list[tuple[int, float]]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    points: list[tuple[int, float]] = []
    for events in sorted((run / "output" / "runs").rglob("events.out.tfevents.*")):
        acc = EventAccumulator(str(events))
        acc.Reload()
        if "train/loss" in acc.Tags().get("scalars", []):
            points += [(e.step, e.value) for e in acc.Scalars("train/loss")]
    return sorted(set(points))


def collect() -> list[dict[str, Any]]:
    rows = []
    for run in rundir.completed_runs():
        m = manifest.read(run)
        t = m.train
        rows.append(
            {
                "run": f"{m.recipe_name}/{run.name}",
                "recipe": m.recipe_name,
                "base": t.base_model.name,
                "params_b": t.meta.params_b,
                "train": t.summary.model_dump() if t.summary else {},
                "results": [r.model_dump() for r in m.lm_eval.results] if m.lm_eval else [],
                "judges": m.judge.judges if m.judge else {},
                "loss": loss_curve(run),
            }
        )
    return rows


def tables(rows: list[dict[str, Any]]) -> str:
    metric_rows = [(r, res) for r in rows for res in r["results"]]
    metric_rows.sort(key=lambda x: -x[1]["metrics"].get(metrics.PRIMARY, 0))
    cols = [m for m in metrics.METRICS if m.name != "rougeLsum"]
    out = [
        "# Leaderboard",
        "",
        "## Held-out generation (lm-eval)",
        "",
        "| rank | run | base model | backend | " + " | ".join(m.label for m in cols) + " |",
        "|---|---|---|---|" + "---|" * len(cols),
    ]
    for i, (r, res) in enumerate(metric_rows, 1):
        m = res["metrics"]
        out.append(
            f"| {i} | {r['run']} | {r['base']} | {res['backend']} | "
            + " | ".join(metric.show(m.get(metric.name)) for metric in cols)
            + " |"
        )
    out += [
        "",
        "## Blind pairwise judging vs the base model",
        "",
        "| run | judge | n | win rate | 95 % CI | W / L / T / invalid | position consistency | note |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        for judge, s in r["judges"].items():
            pc = "-" if s["position_consistency"] is None else f"{100 * s['position_consistency']:.0f} %"
            out.append(
                f"| {r['run']} | {judge} | {s['n']} | {100 * s['win_rate']:.1f} % | {100 * s['ci95'][0]:.1f} - "
                f"{100 * s['ci95'][1]:.1f} % | {s['wins']} / {s['losses']} / {s['ties']} / {s['invalid']} | {pc} | "
                f"{'n < 30' if s['warning'] else ''} |"
            )
    out += [
        "",
        "## Training",
        "",
        "| run | params | steps | first loss | final loss | eval loss |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        t = r["train"]
        f3 = [
            f"{t[k]:.3f}" if isinstance(t.get(k), (int, float)) else "-"
            for k in ("first_loss", "final_loss", "eval_loss")
        ]
        out.append(f"| {r['run']} | {r['params_b']:g}B | {t.get('global_step')} | {' | '.join(f3)} |")
    return "\n".join(out) + "\n"


def plots(rows: list[dict[str, Any]], folder: Path) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    written = []
    metric_rows = [(f"{r['recipe']} ({res['backend']})", res["metrics"]) for r in rows for res in r["results"]]
    if metric_rows:
        fig, ax = plt.subplots(figsize=(max(6, 1.6 * len(metric_rows)), 4))
        keys = [metrics.get(k) for k in ("rouge1", "rouge2", "rougeL", "bleu")]
        width = 0.8 / len(keys)
        for j, metric in enumerate(keys):
            vals = [m.get(metric.name, 0) for _, m in metric_rows]
            ax.bar(np.arange(len(metric_rows)) + j * width, vals, width, label=metric.label)
        ax.set_xticks(
            np.arange(len(metric_rows)) + 0.4 - width / 2, [n for n, _ in metric_rows], rotation=20, ha="right"
        )
        ax.set_title("held-out generation metrics")
        ax.legend()
        fig.tight_layout()
        fig.savefig(folder / "metrics.png", dpi=100)
        plt.close(fig)
        written.append("metrics.png")
    judged = [(f"{r['recipe']} / {j}", s) for r in rows for j, s in r["judges"].items()]
    if judged:
        fig, ax = plt.subplots(figsize=(max(6, 1.4 * len(judged)), 4))
        rates = [100 * s["win_rate"] for _, s in judged]
        err = [
            [100 * (s["win_rate"] - s["ci95"][0]) for _, s in judged],
            [100 * (s["ci95"][1] - s["win_rate"]) for _, s in judged],
        ]
        ax.bar(range(len(judged)), rates, yerr=err, capsize=6, color="#6a8caf")
        ax.axhline(50, color="#999", linestyle="--")
        ax.set_xticks(range(len(judged)), [n for n, _ in judged], rotation=20, ha="right")
        ax.set_ylabel("win rate vs base, % (95 % Wilson CI)")
        fig.tight_layout()
        fig.savefig(folder / "win_rates.png", dpi=100)
        plt.close(fig)
        written.append("win_rates.png")
    curves = [(r["run"], r["loss"]) for r in rows if r["loss"]]
    if curves:
        fig, ax = plt.subplots(figsize=(7, 4))
        for name, pts in curves:
            ax.plot([p[0] for p in pts], [p[1] for p in pts], marker=".", label=name)
        ax.set_xlabel("step")
        ax.set_ylabel("train loss")
        ax.legend(fontsize=7)
        fig.tight_layout()
        fig.savefig(folder / "loss_curves.png", dpi=100)
        plt.close(fig)
        written.append("loss_curves.png")
    return written


def build() -> dict[str, Any]:
    rows = collect()
    folder = outputs_dir() / "leaderboard"
    folder.mkdir(parents=True, exist_ok=True)
    atomic.write_text(folder / "leaderboard.md", tables(rows))
    images = plots(rows, folder)
    atomic.write_json(folder / "leaderboard.json", rows)
    return {"runs": len(rows), "folder": str(folder), "images": images}


def main() -> int:
    def body() -> None:
        result = build()
        print((Path(result["folder"]) / "leaderboard.md").read_text())
        print(f"{result['runs']} runs; written to {result['folder']}: leaderboard.md {' '.join(result['images'])}")

    return cli.main(body)


if __name__ == "__main__":
    sys.exit(main())
