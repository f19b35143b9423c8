"""Statistics (scipy, statsmodels, sacrebleu and networkx; not hand-rolled).

Judging: win rate with a Wilson 95 % CI in each tie convention, a sign test against 50 %, Cohen's kappa per
judge pair, Fleiss' kappa and the all-agree rate.
Held-out metrics, per document: a 95 % bootstrap interval of each model's score (scipy.stats.bootstrap,
percentile, resampling documents); every pair of models on the same documents compared with a paired
permutation test (scipy.stats.permutation_test, the two models' scores swapped within a document: exact for
up to 13 documents) and a paired-bootstrap interval of the difference; p-values Holm-corrected for the number
of comparisons (statsmodels multipletests); tiers and letters from what the tests can tell apart. Corpus BLEU
is resampled through sacrebleu's own sufficient statistics, as sacrebleu's significance module does.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from itertools import combinations
from typing import Any

import numpy as np

SMALL_N = 30  # the seeds' lesson: n < 20 swung 40-60 %; below 30 we warn
ALPHA = 0.05
BOOTSTRAP_RESAMPLES = 2000
PERMUTATIONS = 9999  # 2**13 = 8192 < 9999: up to 13 documents every sign pattern is enumerated (exact)
SEED = 0
MIN_CONSISTENCY = 0.5  # below this share of position-consistent pairs a judge mostly answers by position
PAIRED_TEST = "paired permutation test (scipy.stats.permutation_test, scores swapped within each document)"
INTERVAL = "95 % bootstrap interval over documents (scipy.stats.bootstrap, percentile, 2000 resamples)"
CORRECTION = "Holm (statsmodels multipletests)"
INTERVALS_NOTE = (
    "Intervals are 95 % per model or per pair, not adjusted for the number of comparisons; 'distinguishable' is "
    "the Holm-corrected permutation test's verdict. With few documents a bootstrap interval comes out narrower "
    "than it should; the permutation test is exact up to 13 documents."
)
TIE_CONVENTION = (
    "ties excluded: wins / (wins + losses); ties as half: (wins + ties/2) / (wins + losses + ties); "
    "invalid replies are no verdict and left out of both; 'as published' is wins / all pairs"
)


# --- judging ---------------------------------------------------------------------------------------------


def wilson(count: float, n: float) -> list[float]:
    from statsmodels.stats.proportion import proportion_confint

    if not n:
        return [float("nan"), float("nan")]
    low, high = proportion_confint(count, n, alpha=ALPHA, method="wilson")
    return [float(low), float(high)]


def win_summary(verdicts: list[str]) -> dict[str, Any]:
    """n, counts, win rate as published (ties and invalid count as non-wins) with its Wilson CI, the two
    readings with a stated tie convention, and a sign test on the decided pairs."""
    from scipy.stats import binomtest

    c = Counter(verdicts)
    n = len(verdicts)
    wins, losses, ties = c["candidate"], c["baseline"], c["tie"]
    decided, judged = wins + losses, wins + losses + ties
    return {
        "n": n,
        "wins": wins,
        "losses": losses,
        "ties": ties,
        "invalid": c["invalid"],
        "win_rate": wins / n if n else float("nan"),
        "ci95": wilson(wins, n),
        "win_rate_decided": wins / decided if decided else float("nan"),
        "ties_excluded": {"rate": wins / decided if decided else float("nan"), "ci95": wilson(wins, decided)},
        "ties_half": {
            "rate": (wins + ties / 2) / judged if judged else float("nan"),
            "ci95": wilson(wins + ties / 2, judged),
        },
        "sign_test_p": binomtest(wins, decided, 0.5).pvalue if decided else float("nan"),
        "warning": f"n={n} < {SMALL_N}: too few for a stable win rate" if n < SMALL_N else None,
    }


def usability(position_consistency: float | None, floor: float = MIN_CONSISTENCY) -> tuple[bool, str | None]:
    """A judge whose verdicts flip with the order of the pair more often than not is judging positions, not
    responses: its win rate means nothing (the embedded SmolLM2 judge always answers "A": 0 %)."""
    if position_consistency is None:
        return True, "position consistency not measured (judged in one order only)"
    if position_consistency < floor:
        return False, (
            f"position consistency {100 * position_consistency:.0f} % < the {100 * floor:.0f} % floor: its verdict "
            "follows the order of the pair, not the responses; no win rate is reported"
        )
    return True, None


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


# --- held-out metrics per document ------------------------------------------------------------------------


def doc_table(samples: Sequence[dict[str, Any]], metric: str, corpus: bool) -> np.ndarray:
    """Per-document values of `metric` (n,), or for a corpus metric (BLEU) sacrebleu's per-sentence
    sufficient statistics (n, 2 + 2 * max_ngram_order), which sum to the corpus score."""
    if corpus:
        from sacrebleu.metrics import BLEU

        hyps = [s["prediction"].strip() for s in samples]
        refs = [s["reference"].strip() for s in samples]
        return np.array(BLEU()._extract_corpus_statistics(hyps, [refs]), dtype=float).reshape(len(samples), -1)
    return np.array([float(s["metrics"][metric]) for s in samples])


def _statistic(table: np.ndarray, corpus: bool) -> tuple[Callable, bool]:
    """(score of the documents at some indices, vectorized?). Indices rather than values are resampled, so
    a corpus metric is recomputed from the resampled documents' statistics."""
    if corpus:
        from sacrebleu.metrics import BLEU

        bleu = BLEU()

        def corpus_score(idx):
            return bleu._compute_score_from_stats(table[np.asarray(idx, dtype=int)].sum(0).tolist()).score / 100

        return corpus_score, False

    def mean(idx, axis=-1):
        return table[np.asarray(idx, dtype=int)].mean(axis=axis)

    return mean, True


def interval(table: np.ndarray, corpus: bool = False) -> dict[str, Any]:
    """The score on these documents and its 95 % bootstrap interval (documents resampled)."""
    from scipy.stats import bootstrap

    n = len(table)
    stat, vectorized = _statistic(table, corpus)
    estimate = float(stat(np.arange(n))) if n else float("nan")
    if n < 2:
        return {"estimate": estimate, "ci95": [float("nan"), float("nan")], "n": n}
    res = bootstrap(
        (np.arange(n),),
        stat,
        vectorized=vectorized,
        n_resamples=BOOTSTRAP_RESAMPLES,
        method="percentile",
        rng=np.random.default_rng(SEED),
    )
    return {
        "estimate": estimate,
        "ci95": [float(res.confidence_interval.low), float(res.confidence_interval.high)],
        "n": n,
    }


def paired(a: np.ndarray, b: np.ndarray, corpus: bool = False) -> dict[str, Any]:
    """Model a minus model b on the same documents (row i of each is document i): the difference, its
    paired-bootstrap 95 % interval and the two-sided p of the paired permutation test."""
    from scipy.stats import bootstrap, permutation_test

    n = len(a)
    if n != len(b):
        raise ValueError(f"paired comparison needs the same documents ({n} vs {len(b)})")
    stat, vectorized = _statistic(np.concatenate([a, b]), corpus)
    ia, ib = np.arange(n), np.arange(n) + n  # indices into the stacked table: swapping them swaps the models

    if vectorized:

        def diff(x, y, axis=-1):
            return stat(x, axis=axis) - stat(y, axis=axis)
    else:

        def diff(x, y):
            return stat(x) - stat(y)

    observed = float(diff(ia, ib))
    if n < 2:
        return {"diff": observed, "ci95": [float("nan")] * 2, "p": float("nan"), "n": n, "test": PAIRED_TEST}
    perm = permutation_test(
        (ia, ib),
        diff,
        permutation_type="samples",
        vectorized=vectorized,
        n_resamples=PERMUTATIONS,
        rng=np.random.default_rng(SEED),
    )
    boot = bootstrap(
        (ia, ib),
        diff,
        paired=True,
        vectorized=vectorized,
        n_resamples=BOOTSTRAP_RESAMPLES,
        method="percentile",
        rng=np.random.default_rng(SEED),
    )
    ci = boot.confidence_interval
    return {
        "diff": observed,
        "ci95": [float(ci.low), float(ci.high)],
        "p": float(perm.pvalue),
        "n": n,
        "test": PAIRED_TEST,
    }


def holm(pvalues: Sequence[float]) -> list[float]:
    """Holm-adjusted p-values, in the order given (nan stays nan and is not counted as a comparison)."""
    from statsmodels.stats.multitest import multipletests

    p = np.asarray(pvalues, dtype=float)
    out = np.full(len(p), np.nan)
    ok = ~np.isnan(p)
    if ok.any():
        out[ok] = multipletests(p[ok], alpha=ALPHA, method="holm")[1]
    return [float(x) for x in out]


def tiers(estimates: dict[str, float], separable: Callable[[str, str], bool], higher_is_better: bool = True):
    """(tier per model, letters per model). Tier 1: every model the tests cannot tell from the best; tier 2:
    of the rest, every model they cannot tell from the best of those; and so on. Letters (a compact letter
    display: the maximal groups of mutually indistinguishable models, networkx.find_cliques) say the rest:
    two models sharing a letter are not distinguishable. Neither claims an order the data does not show."""
    import networkx as nx

    order = sorted(estimates, key=lambda m: estimates[m], reverse=higher_is_better)
    tier: dict[str, int] = {}
    remaining, t = list(order), 0
    while remaining:
        t += 1
        leader = remaining[0]
        members = [m for m in remaining if m == leader or not separable(leader, m)]
        tier.update((m, t) for m in members)
        remaining = [m for m in remaining if m not in members]
    graph = nx.Graph()
    graph.add_nodes_from(order)
    graph.add_edges_from((a, b) for a, b in combinations(order, 2) if not separable(a, b))
    cliques = sorted(
        (sorted(c, key=order.index) for c in nx.find_cliques(graph)), key=lambda c: [order.index(m) for m in c]
    )
    letters = dict.fromkeys(order, "")
    for i, clique in enumerate(cliques):
        for m in clique:
            letters[m] += "abcdefghijklmnopqrstuvwxyz"[i % 26]
    return tier, letters


def compare(tables: dict[str, np.ndarray], corpus: bool = False, higher_is_better: bool = True) -> dict[str, Any]:
    """Every model's interval, every pair's paired test (Holm over all pairs), tiers and letters. `tables` are
    per-document rows in the same document order for every model."""
    names = list(tables)
    scores = {m: interval(tables[m], corpus) for m in names}
    pairs = [(a, b, paired(tables[a], tables[b], corpus)) for a, b in combinations(names, 2)]
    adjusted = holm([r["p"] for _, _, r in pairs])
    out_pairs = []
    for (a, b, r), p_adj in zip(pairs, adjusted, strict=True):
        out_pairs.append({"a": a, "b": b, **r, "p_holm": p_adj, "distinguishable": bool(p_adj < ALPHA)})
    sep = {frozenset((p["a"], p["b"])): p["distinguishable"] for p in out_pairs}
    tier, letters = tiers(
        {m: s["estimate"] for m, s in scores.items()}, lambda x, y: sep[frozenset((x, y))], higher_is_better
    )
    return {
        "scores": scores,
        "pairs": out_pairs,
        "tiers": tier,
        "letters": letters,
        "comparisons": len(pairs),
        "test": PAIRED_TEST,
        "correction": CORRECTION,
        "alpha": ALPHA,
    }


def heldout(models: dict[str, list[dict[str, Any]]], base_of: dict[str, str] | None = None) -> dict[str, Any]:
    """Every metric of every model (per-document rows from eval/lmeval.py) compared on shared documents.
    Models are grouped by their exact document set: only models scored on the same documents are paired.
    `base_of[model]` names the row of its base model; its difference is read from the pair's test."""
    from core import metrics as registry

    groups: dict[tuple[str, ...], list[str]] = {}
    for name, rows in models.items():
        groups.setdefault(tuple(sorted(r["doc"] for r in rows)), []).append(name)
    out: dict[str, Any] = {"groups": [], "model_group": {}, "vs_base": {}}
    for g, (docs, names) in enumerate(groups.items()):
        order = {d: i for i, d in enumerate(docs)}
        aligned = {m: sorted(models[m], key=lambda r: order[r["doc"]]) for m in names}
        per_metric = {}
        for metric in registry.METRICS:
            corpus = metric.aggregation == "corpus"
            tables = {m: doc_table(aligned[m], metric.name, corpus) for m in names}
            per_metric[metric.name] = compare(tables, corpus, metric.higher_is_better)
        out["groups"].append({"models": names, "docs": len(docs), "metrics": per_metric})
        out["model_group"].update((m, g) for m in names)
    for model, base in (base_of or {}).items():
        if base not in out["model_group"] or out["model_group"].get(model) != out["model_group"][base]:
            continue
        group = out["groups"][out["model_group"][model]]
        out["vs_base"][model] = {"base": base}
        for name, result in group["metrics"].items():
            pair = next(p for p in result["pairs"] if {p["a"], p["b"]} == {model, base})
            sign = 1 if pair["a"] == model else -1
            lo, hi = (sign * x for x in pair["ci95"])
            out["vs_base"][model][name] = {**pair, "diff": sign * pair["diff"], "ci95": sorted([lo, hi])}
    return out
