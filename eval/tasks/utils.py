"""Metrics of the persona seed for lm-eval's generate_until task: exact match, Jaccard token overlap,
ROUGE-1/2/L/Lsum (rouge-score) per document, and corpus BLEU (sacrebleu, on 0-1 like the rest) as a custom
aggregation. The metric list itself comes from core/metrics.py.
Copied beside each generated task YAML (lm-eval resolves `!function utils.x` relative to it)."""

from __future__ import annotations

import re


def _tokens(text: str) -> set[str]:
    return set(re.findall(r"\w+", text.lower()))


def jaccard(pred: str, ref: str) -> float:
    a, b = _tokens(pred), _tokens(ref)
    return len(a & b) / len(a | b) if a | b else 1.0


def process_results(doc, results):
    from rouge_score import rouge_scorer

    pred = results[0].strip()
    ref = doc["reference"].strip()
    scorer = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL", "rougeLsum"], use_stemmer=True)
    scores = scorer.score(ref, pred)
    return {
        "exact_match": float(pred == ref),
        "jaccard": jaccard(pred, ref),
        **{k: v.fmeasure for k, v in scores.items()},
        "bleu": (ref, pred),
    }


def corpus_bleu(items):
    """Corpus BLEU on the 0-1 scale of every other metric (sacrebleu reports 0-100; core/metrics.py)."""
    import sacrebleu

    refs, preds = zip(*items, strict=True)
    return sacrebleu.corpus_bleu(list(preds), [list(refs)]).score / 100.0
