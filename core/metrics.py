"""The metric registry: every held-out metric's name, label, scale, direction and how to print it. The lm-eval
task, the leaderboard, the study report and the model cards read it, so adding a metric is one edit here (plus
its per-document function in eval/tasks/utils.py).

Every metric is on a 0-1 scale, BLEU included (the persona seed reported BLEU 0-1; sacrebleu's 0-100 score is
divided by 100), so a table never prints BLEU 0-100 beside ROUGE 0-1.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict


class Metric(BaseModel):
    model_config = ConfigDict(frozen=True)
    name: str  # the key in lm-eval results and manifests
    label: str  # how tables and plots name it
    higher_is_better: bool = True
    aggregation: Literal["mean", "corpus"] = "mean"  # corpus: computed over all documents at once (BLEU)
    digits: int = 3
    scale: tuple[float, float] = (0.0, 1.0)
    on_leaderboard: bool = True  # a column of the leaderboard's held-out table

    def show(self, value: float | None) -> str:
        if value is None or value != value:
            return "-"
        return f"{value:.{self.digits}f}"


METRICS: tuple[Metric, ...] = (
    Metric(name="rouge1", label="ROUGE-1"),
    Metric(name="rouge2", label="ROUGE-2"),
    Metric(name="rougeL", label="ROUGE-L"),
    Metric(name="rougeLsum", label="ROUGE-Lsum", on_leaderboard=False),
    Metric(name="bleu", label="BLEU (0-1)", aggregation="corpus"),
    Metric(name="jaccard", label="Jaccard"),
    Metric(name="exact_match", label="EM"),
)
BY_NAME = {m.name: m for m in METRICS}
PRIMARY = "rouge1"  # what the persona seed ranked by


def get(name: str) -> Metric:
    try:
        return BY_NAME[name]
    except KeyError:
        raise KeyError(f"unknown metric '{name}' (known: {', '.join(BY_NAME)})") from None


def on_leaderboard() -> tuple[Metric, ...]:
    return tuple(m for m in METRICS if m.on_leaderboard)


def per_document() -> tuple[Metric, ...]:
    """Metrics lm-eval averages over documents (the rest are corpus-level aggregations)."""
    return tuple(m for m in METRICS if m.aggregation == "mean")
