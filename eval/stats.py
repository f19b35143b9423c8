"""Statistics for pairwise judging (statsmodels/scipy, not hand-rolled): win rate with a Wilson 95 % CI,
a sign test against 50 %, Cohen's kappa per judge pair, Fleiss' kappa and the all-agree rate."""

from __future__ import annotations

from collections import Counter
from itertools import combinations
from typing import Any

import numpy as np

SMALL_N = 30  # the seeds' lesson: n < 20 swung 40-60 %; below 30 we warn


def win_summary(verdicts: list[str]) -> dict[str, Any]:
    """n, counts, win rate (ties and invalid count as non-wins, as published) with Wilson CI, sign test."""
    from scipy.stats import binomtest
    from statsmodels.stats.proportion import proportion_confint

    c = Counter(verdicts)
    n = len(verdicts)
    wins, losses = c["candidate"], c["baseline"]
    low, high = proportion_confint(wins, n, alpha=0.05, method="wilson") if n else (float("nan"), float("nan"))
    decided = wins + losses
    p = binomtest(wins, decided, 0.5).pvalue if decided else float("nan")
    return {
        "n": n,
        "wins": wins,
        "losses": losses,
        "ties": c["tie"],
        "invalid": c["invalid"],
        "win_rate": wins / n if n else float("nan"),
        "ci95": [low, high],
        "win_rate_decided": wins / decided if decided else float("nan"),
        "sign_test_p": p,
        "warning": f"n={n} < {SMALL_N}: too few for a stable win rate" if n < SMALL_N else None,
    }


def cohen_kappa(a: list[str], b: list[str], categories=("candidate", "baseline", "tie")) -> float:
    from statsmodels.stats.inter_rater import cohens_kappa

    idx = {c: i for i, c in enumerate(categories)}
    table = np.zeros((len(categories), len(categories)))
    for x, y in zip(a, b, strict=True):
        table[idx[x], idx[y]] += 1
    return float(cohens_kappa(table, return_results=False))


def fleiss(ratings: list[list[str]], categories=("candidate", "baseline", "tie")) -> float:
    """ratings[item] = one verdict per judge."""
    from statsmodels.stats.inter_rater import fleiss_kappa

    table = np.array([[row.count(c) for c in categories] for row in ratings])
    return float(fleiss_kappa(table))


def agreement(by_judge: dict[str, dict[Any, str]]) -> dict[str, Any]:
    """Inter-judge agreement on the items every judge rated (invalid verdicts excluded)."""
    judges = sorted(by_judge)
    if len(judges) < 2:
        return {}
    items = sorted(set.intersection(*({k for k, v in by_judge[j].items() if v != "invalid"} for j in judges)), key=str)
    pairs = {
        f"{a} vs {b}": cohen_kappa([by_judge[a][i] for i in items], [by_judge[b][i] for i in items])
        for a, b in combinations(judges, 2)
    }
    rows = [[by_judge[j][i] for j in judges] for i in items]
    all_agree = sum(len(set(r)) == 1 for r in rows)
    return {
        "judges": judges,
        "items": len(items),
        "cohen_kappa": pairs,
        "fleiss_kappa": fleiss(rows) if len(judges) > 2 else None,
        "all_agree": all_agree,
        "all_agree_rate": all_agree / len(items) if items else float("nan"),
    }
