"""The held-out generation task through the real lm-eval: on the default recipe's merged SmolLM2 and its GGUF;
a model that answers exactly the references scores EM/ROUGE/BLEU 1/1/100; and the in-process GGUF backend's
loglikelihood agrees with the HF model's within 0.05 nats for the f16 file."""
from __future__ import annotations

import pytest
import torch
from lm_eval.api.model import LM

from eval import lmeval
from eval.tasks import utils as task_utils
from launch import runs
from tools import gguf


class EchoLM(LM):
    """Answers each prompt with its reference: what a perfect model would say."""

    def __init__(self, answers: dict[str, str]):
        super().__init__()
        self.answers = answers

    def generate_until(self, requests):
        return [self.answers[req.args[0]] for req in requests]

    def loglikelihood(self, requests):
        raise NotImplementedError

    def loglikelihood_rolling(self, requests):
        raise NotImplementedError


def test_identical_generations_score_perfectly(tmp_path):
    docs = [{"prompt": "Why keep a diary?", "reference": "To set a thought down so it stops circling."},
            {"prompt": "What is wonder?", "reference": "The moment the ordinary stops being obvious."}]
    lmeval.write_task(tmp_path, docs, 32)
    metrics = lmeval.score(EchoLM({d["prompt"]: d["reference"] for d in docs}), None, tmp_path, chat=False, limit=None)
    assert metrics["exact_match"] == 1.0 and metrics["jaccard"] == 1.0
    assert metrics["rouge1"] == metrics["rouge2"] == metrics["rougeL"] == metrics["rougeLsum"] == 1.0
    assert metrics["bleu"] == pytest.approx(100.0)


def test_metric_functions_by_hand():
    r = task_utils.process_results({"reference": "the cat sat"}, ["the cat ran"])
    assert r["exact_match"] == 0.0 and r["jaccard"] == pytest.approx(2 / 4) and r["bleu"] == ("the cat sat", "the cat ran")
    assert r["rouge1"] == pytest.approx(2 / 3)


@pytest.fixture
def gguf_run(default_run):
    run, _ = default_run
    if "gguf" not in runs.read_manifest(run):
        gguf.build(run, ["Q4_K_M"])
    return run


@pytest.mark.slow
def test_heldout_task_on_hf_and_gguf(gguf_run):
    section = lmeval.evaluate(gguf_run, ["hf", "gguf"], limit=3, max_gen_toks=16)
    by_backend = {r["backend"]: r["metrics"] for r in section["results"]}
    assert "hf" in by_backend and "gguf:f16" in by_backend and len(by_backend) >= 3
    for metrics in by_backend.values():
        assert set(lmeval.METRICS) | {"bleu"} <= set(metrics)
        assert all(0.0 <= metrics[m] <= 1.0 for m in lmeval.METRICS) and 0.0 <= metrics["bleu"] <= 100.0
    assert by_backend["hf"] == pytest.approx(by_backend["gguf:f16"], abs=1e-6)  # greedy f16 == HF (parity)
    manifest = runs.read_manifest(gguf_run)
    assert manifest["eval"]["lm_eval"]["version"] and manifest["eval"]["lm_eval"]["chat_template"] is True
    assert set(manifest["eval"]["lm_eval"]["task_files"]) == {"affinage_heldout.yaml", "utils.py", "heldout.jsonl"}


class _Req:
    def __init__(self, *args):
        self.args = args


@pytest.mark.slow
def test_gguf_loglikelihood_matches_hf(gguf_run):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from eval.gguf_lm import GGUFLM

    m = runs.read_manifest(gguf_run)
    merged = gguf_run / m["merge"]["path"]
    tok = AutoTokenizer.from_pretrained(merged)
    model = AutoModelForCausalLM.from_pretrained(merged, dtype=torch.float32)
    lm = GGUFLM(gguf_run / m["gguf"]["path"] / m["gguf"]["files"]["f16"]["file"])
    try:
        pairs = [("The capital of France is", " Paris"), ("Waiting is time made", " visible."),
                 ("<|im_start|>user\nWhat is wonder?<|im_end|>\n<|im_start|>assistant\n", "Wonder is the moment")]
        got = lm.loglikelihood([_Req(c, x) for c, x in pairs])
        for (context, cont), (ll, _) in zip(pairs, got):
            ctx = tok(context)["input_ids"]
            whole = tok(context + cont)["input_ids"]
            with torch.no_grad():
                logp = torch.log_softmax(model(torch.tensor([whole])).logits[0].double(), -1)
            expected = sum(logp[i - 1, whole[i]].item() for i in range(len(ctx), len(whole)))
            assert ll == pytest.approx(expected, abs=0.05), (context, ll, expected)
    finally:
        lm.close()
