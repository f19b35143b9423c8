"""Statistics of held-out scores against cases computed by hand: a known paired difference is found, two
identical models are "not distinguishable", the exact sign-flip p of a small case, Holm on known p-values,
tiers and letters, corpus BLEU resampled through sacrebleu's statistics; lm-eval's per-document scores are
kept; and the leaderboard does not rank a Q4_K_M GGUF above the model it was quantized from on 8 documents."""

from __future__ import annotations

import json

import numpy as np
import pytest
import sacrebleu

from core import atomic, manifest, metrics, settings
from core.manifest import BaseModelRef, EvalResult, FinalCheckpoint, LmEvalSection, RecipeRef, TrainSection
from eval import leaderboard, lmeval, stats


def test_a_known_paired_difference_is_found():
    rng = np.random.default_rng(7)
    base = rng.uniform(0.2, 0.6, 40)
    better = base + 0.05 + rng.normal(0, 0.01, 40)  # every document 0.05 +- 0.01 higher
    r = stats.paired(better, base)
    assert r["diff"] == pytest.approx(np.mean(better - base))
    assert r["ci95"][0] > 0.03 and r["ci95"][1] < 0.07 and r["ci95"][0] < r["diff"] < r["ci95"][1]
    assert r["p"] == pytest.approx(2 / (stats.PERMUTATIONS + 1))  # none as extreme: the smallest two-sided p
    assert "permutation" in r["test"]


def test_two_identical_models_are_not_distinguishable():
    scores = np.array([0.31, 0.28, 0.45, 0.12, 0.39, 0.33, 0.27, 0.4])
    result = stats.compare({"a": scores, "b": scores.copy()})
    [pair] = result["pairs"]
    assert pair["diff"] == 0 and pair["p"] == 1.0 and pair["ci95"] == [0.0, 0.0]
    assert not pair["distinguishable"] and result["tiers"] == {"a": 1, "b": 1}
    assert result["letters"]["a"] == result["letters"]["b"] == "a"


def test_the_exact_sign_flip_p_of_a_small_case():
    # n documents, all differences positive: the observed mean is the largest of the 2**n sign patterns,
    # so the two-sided p is 2 / 2**n: 0.0625 for 5 documents (not distinguishable), 0.03125 for 6
    for n, expected in ((5, 2 / 32), (6, 2 / 64)):
        a = np.linspace(0.5, 0.9, n)
        b = a - np.linspace(0.1, 0.2, n)
        assert stats.paired(a, b)["p"] == pytest.approx(expected)
    assert not stats.compare({"x": np.linspace(0.5, 0.9, 5), "y": np.linspace(0.4, 0.7, 5)})["pairs"][0][
        "distinguishable"
    ]


def test_holm_on_known_p_values():
    # sorted 0.005, 0.01, 0.03, 0.04 times 4, 3, 2, 1 = 0.02, 0.03, 0.06, 0.04; running max: 0.02, 0.03, 0.06, 0.06
    assert stats.holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert stats.holm([0.2, float("nan")])[0] == pytest.approx(0.2)  # nan is not a comparison


def test_tiers_and_letters_by_hand():
    est = {"A": 3.0, "B": 2.0, "C": 1.0}
    apart = {frozenset("AC")}  # only A and C can be told apart
    tier, letters = stats.tiers(est, lambda x, y: frozenset((x, y)) in apart)
    assert tier == {"A": 1, "B": 1, "C": 2}
    assert letters == {"A": "a", "B": "ab", "C": "b"}  # B shares a letter with both: no order between them


def test_interval_and_corpus_bleu_through_sacrebleu():
    rows = [
        {"prediction": "the cat sat on the mat", "reference": "the cat sat on a mat"},
        {"prediction": "a dog barked", "reference": "the dog barked loudly"},
        {"prediction": "hello there my friend", "reference": "hello there my good friend"},
        {"prediction": "rain again today", "reference": "it rains again today"},
    ]
    table = stats.doc_table(rows, "bleu", corpus=True)
    r = stats.interval(table, corpus=True)
    corpus = sacrebleu.corpus_bleu([x["prediction"] for x in rows], [[x["reference"] for x in rows]]).score / 100
    assert r["estimate"] == pytest.approx(corpus) and r["n"] == 4
    assert r["ci95"][0] <= r["estimate"] <= r["ci95"][1]
    mean = stats.interval(np.array([0.0, 1.0] * 10))  # by hand: 0.5 -+ 1.96 * 0.5 / sqrt(20) = 0.281, 0.719
    assert mean["estimate"] == 0.5 and mean["ci95"] == pytest.approx([0.281, 0.719], abs=0.04)


def _rows(values: list[float], docs: list[str]) -> list[dict]:
    return [
        {
            "doc": d,
            "prompt": f"p {d}",
            "reference": "a b c d",
            "prediction": "a b" if v < 0.5 else "a b c",
            "metrics": {m.name: v for m in metrics.per_document()},
        }
        for d, v in zip(docs, values, strict=True)
    ]


def test_models_are_paired_only_on_the_same_documents_and_beside_their_base():
    docs = [f"d{i}" for i in range(12)]
    base = _rows([0.2] * 12, docs)
    tuned = _rows([0.6] * 12, docs)
    other = _rows([0.9] * 3, ["x1", "x2", "x3"])
    result = stats.heldout({"base": base, "tuned": tuned, "other": other}, {"tuned": "base"})
    assert len(result["groups"]) == 2 and result["model_group"]["other"] != result["model_group"]["tuned"]
    vs = result["vs_base"]["tuned"]["rouge1"]
    assert vs["diff"] == pytest.approx(0.4) and vs["ci95"] == pytest.approx([0.4, 0.4])
    assert vs["p"] == pytest.approx(2 / 2**12) and vs["distinguishable"]


def test_lm_eval_keeps_per_document_scores(tmp_path):
    from tests.test_lmeval import EchoLM

    docs = [
        {"prompt": "Why keep a diary?", "reference": "To set a thought down so it stops circling."},
        {"prompt": "What is wonder?", "reference": "The moment the ordinary stops being obvious."},
    ]
    lmeval.write_task(tmp_path, docs, 32)
    answers = {docs[0]["prompt"]: docs[0]["reference"], docs[1]["prompt"]: "The ordinary."}
    scores, rows = lmeval.score_docs(EchoLM(answers), None, tmp_path, chat=False, limit=None)
    assert [r["doc_id"] for r in rows] == [0, 1] and rows[1]["prediction"] == "The ordinary."
    assert rows[0]["metrics"]["exact_match"] == 1.0 and rows[1]["metrics"]["exact_match"] == 0.0
    assert scores["rouge1"] == pytest.approx(np.mean([r["metrics"]["rouge1"] for r in rows]))
    bleu = stats.interval(stats.doc_table(rows, "bleu", corpus=True), corpus=True)["estimate"]
    assert bleu == pytest.approx(scores["bleu"])  # lm-eval's corpus BLEU, rebuilt from the documents
    assert rows[0]["doc"] == lmeval.doc_key(docs[0]) != rows[1]["doc"]


def fake_run(outputs, name: str, results: dict[str, list[float]], docs: list[str]) -> None:
    """A completed run directory with lm_eval results and per-document scores (no training)."""
    run = outputs / "runs" / "smollm2-135m-cpu" / name
    (run / "output").mkdir(parents=True)
    (run / "output" / "adapter_model.safetensors").write_bytes(b"x")
    train = TrainSection(
        recipe=RecipeRef(name="smollm2-135m-cpu"),
        base_model=BaseModelRef(name="HuggingFaceTB/SmolLM2-135M-Instruct", path="/nonexistent"),
        status="completed",
        final_checkpoint=FinalCheckpoint(path="output", file="adapter_model.safetensors", sha256="0" * 64),
    )
    manifest.create(run, train)
    samples, evaluated, base = {}, [], None
    for backend, values in results.items():
        rel = f"eval/samples/{backend.replace(':', '-')}.jsonl"
        atomic.write_text(run / rel, "".join(json.dumps(r) + "\n" for r in _rows(values, docs)))
        samples[backend] = rel
        result = EvalResult(task="t", backend=backend, metrics={"rouge1": float(np.mean(values))})
        if backend == "base":
            base = result
        else:
            evaluated.append(result)
    manifest.write_sections(run, lm_eval=LmEvalSection(results=evaluated, base=base, samples=samples, docs=len(docs)))


def test_the_leaderboard_does_not_rank_a_q4_gguf_above_its_source(outputs):
    docs = [f"d{i}" for i in range(8)]
    hf = [0.30, 0.22, 0.41, 0.35, 0.28, 0.33, 0.19, 0.37]
    q4 = [0.31, 0.25, 0.40, 0.36, 0.30, 0.32, 0.21, 0.38]  # a little higher on average, on 8 documents
    fake_run(outputs, "20260101T000000Z", {"hf": hf, "gguf:Q4_K_M": q4, "base": [0.1] * 8}, docs)
    result = leaderboard.build(settings.load().outputs)
    text = (outputs / "leaderboard" / "leaderboard.md").read_text()
    rows = {line.split(" | ")[3]: line for line in text.splitlines() if line.startswith("| ") and "20260101" in line}
    assert rows["hf"].startswith("| 1 |") and rows["gguf:Q4_K_M"].startswith("| 1 |")  # one tier, no rank between
    assert "not distinguishable" in text and "paired permutation test" in text and "Holm" in text
    assert "95 % CI" in text and "[" in rows["hf"]  # every score with its interval
    assert "| 2 | base: HuggingFaceTB/SmolLM2-135M-Instruct" in text  # the base row, below: 8 of 8 documents
    assert "+0.2" in rows["hf"] and "(distinguishable)" in rows["hf"]  # the difference from the base
    assert {"metrics.png", "significance.png"} <= set(result["images"])
