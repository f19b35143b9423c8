"""The PNG plots of the leaderboard and the study report (matplotlib, Agg): held-out metrics with 95 % error
bars, the pairwise significance matrix, judge win rates with Wilson intervals (an unusable judge gets no
bar), cost against quality, and loss curves with the held-out eval loss."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from core import metrics

BARS = ("rouge1", "rouge2", "rougeL", "bleu")


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path) -> str:
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    _plt().close(fig)
    return path.name


def _scores(analysis: dict[str, Any]) -> dict[str, dict[str, dict]]:
    """model -> metric -> {estimate, ci95}."""
    out: dict[str, dict[str, dict]] = {}
    for group in analysis["groups"]:
        for metric, res in group["metrics"].items():
            for model, s in res["scores"].items():
                out.setdefault(model, {})[metric] = s
    return out


def metric_bars(path: Path, analysis: dict[str, Any]) -> str | None:
    import numpy as np

    scores = _scores(analysis)
    names = list(scores)
    if not names:
        return None
    plt = _plt()
    fig, ax = plt.subplots(figsize=(max(6, 1.6 * len(names)), 4))
    width = 0.8 / len(BARS)
    for j, key in enumerate(BARS):
        metric = metrics.get(key)
        vals = np.array([scores[n][key]["estimate"] for n in names])
        low = np.array([scores[n][key]["ci95"][0] for n in names])
        high = np.array([scores[n][key]["ci95"][1] for n in names])
        err = np.nan_to_num(np.array([vals - low, high - vals]), nan=0.0).clip(min=0)
        ax.bar(np.arange(len(names)) + j * width, vals, width, yerr=err, capsize=3, label=metric.label)
    ax.set_xticks(np.arange(len(names)) + 0.4 - width / 2, names, rotation=20, ha="right", fontsize=7)
    ax.set_title("held-out generation metrics (95 % bootstrap CI over documents)")
    ax.legend(fontsize=7)
    return _save(fig, path)


def significance(path: Path, analysis: dict[str, Any], primary: str = metrics.PRIMARY) -> str | None:
    """Holm-adjusted p of every pair on the primary metric; '≠' marks a distinguishable pair."""
    import numpy as np

    groups = [g for g in analysis["groups"] if len(g["models"]) > 1]
    if not groups:
        return None
    plt = _plt()
    fig, axes = plt.subplots(1, len(groups), figsize=(max(5, 1.1 * sum(len(g["models"]) for g in groups) + 2), 4.5))
    for ax, group in zip(np.atleast_1d(axes), groups, strict=True):
        names = group["models"]
        idx = {n: i for i, n in enumerate(names)}
        grid = np.full((len(names), len(names)), np.nan)
        for r in group["metrics"][primary]["pairs"]:
            grid[idx[r["a"]], idx[r["b"]]] = grid[idx[r["b"]], idx[r["a"]]] = r["p_holm"]
        im = ax.imshow(np.nan_to_num(grid, nan=1.0), vmin=0, vmax=1, cmap="RdYlGn")
        for (i, j), p in np.ndenumerate(grid):
            if i != j:
                ax.text(j, i, f"{p:.2g}{' ≠' if p < 0.05 else ''}", ha="center", va="center", fontsize=7)
        short = [n if len(n) < 28 else n[:26] + "…" for n in names]
        ax.set_xticks(range(len(names)), short, rotation=30, ha="right", fontsize=7)
        ax.set_yticks(range(len(names)), short, fontsize=7)
        ax.set_title(f"paired permutation p (Holm), {metrics.get(primary).label}", fontsize=8)
    fig.colorbar(im, ax=np.atleast_1d(axes).tolist(), shrink=0.7)
    fig.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(fig)
    return path.name


def win_rates(path: Path, judged: list[tuple[str, dict[str, Any]]]) -> str | None:
    """Ties-excluded win rate with its Wilson CI; an unusable judge is marked, never drawn as a bar."""
    if not judged:
        return None
    plt = _plt()
    fig, ax = plt.subplots(figsize=(max(6, 1.4 * len(judged)), 4))
    for i, (_, s) in enumerate(judged):
        reading = s.get("ties_excluded") or {"rate": s["win_rate"], "ci95": s["ci95"]}
        rate = reading["rate"]  # None or nan: no decided pair (a manifest stores nan as null)
        if not s.get("usable", True) or rate is None or rate != rate or None in reading["ci95"]:
            ax.text(
                i,
                50,
                "unusable" if not s.get("usable", True) else "no verdicts",
                ha="center",
                rotation=90,
                color="#a33",
            )
            continue
        rate, (low, high) = 100 * reading["rate"], reading["ci95"]
        ax.bar(i, rate, yerr=[[rate - 100 * low], [100 * high - rate]], capsize=6, color="#6a8caf")
    ax.axhline(50, color="#999", linestyle="--")
    ax.set_ylim(0, 100)
    ax.set_xticks(range(len(judged)), [n for n, _ in judged], rotation=20, ha="right", fontsize=7)
    ax.set_ylabel("win rate vs base, ties excluded, % (95 % Wilson CI)")
    return _save(fig, path)


def cost_quality(path: Path, points: list[tuple[str, float, dict]], primary: str = metrics.PRIMARY) -> str | None:
    """(name, cost in USD, {estimate, ci95}) per run."""
    pts = [p for p in points if p[1] is not None and p[2]]
    if not pts:
        return None
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 4))
    for name, cost, s in pts:
        est, (low, high) = s["estimate"], s["ci95"]
        err = [[max(0.0, est - low) if low == low else 0.0], [max(0.0, high - est) if high == high else 0.0]]
        ax.errorbar([cost], [est], yerr=err, fmt="o", capsize=4)
        ax.annotate(name, (cost, est), fontsize=7, xytext=(4, 4), textcoords="offset points")
    ax.set_xlabel("cost, USD (pods: spent; local runs: 0)")
    ax.set_ylabel(f"{metrics.get(primary).label} (95 % CI)")
    return _save(fig, path)


def loss_curves(path: Path, curves: list[tuple[str, list, list]]) -> str | None:
    """(name, train loss points, eval loss points) per run; eval loss dashed with markers."""
    curves = [c for c in curves if c[1] or c[2]]
    if not curves:
        return None
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 4))
    for i, (name, train, held_out) in enumerate(curves):
        color = f"C{i % 10}"
        if train:
            ax.plot([p[0] for p in train], [p[1] for p in train], color=color, marker=".", label=f"{name} train")
        if held_out:
            ax.plot(
                [p[0] for p in held_out],
                [p[1] for p in held_out],
                color=color,
                linestyle="--",
                marker="o",
                label=f"{name} eval",
            )
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.legend(fontsize=6)
    return _save(fig, path)


def write_all(folder: Path, models, analysis, judged, curves, costs=None) -> list[str]:
    folder.mkdir(parents=True, exist_ok=True)
    made = [
        metric_bars(folder / "metrics.png", analysis),
        significance(folder / "significance.png", analysis),
        win_rates(folder / "win_rates.png", judged),
        cost_quality(folder / "cost_quality.png", costs or []),
        loss_curves(folder / "loss_curves.png", curves),
    ]
    return [m for m in made if m]
