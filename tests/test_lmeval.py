"""The held-out generation task through the real lm-eval: on the default recipe's merged SmolLM2 and its GGUF;
a model that answers exactly the references scores EM/ROUGE/BLEU 1/1/1 (every metric is 0-1, core/metrics.py);
and the in-process GGUF backend's loglikelihood agrees with the HF model's within 0.05 nats for the f16 file."""

from __future__ import annotations

import pytest
import torch
from lm_eval.api.model import LM

from core import manifest, metrics
from eval import lmeval
from eval.tasks import utils as task_utils
from tests.shared_runs import copy_run


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
    docs = [
        {"prompt": "Why keep a diary?", "reference": "To set a thought down so it stops circling."},
        {"prompt": "What is wonder?", "reference": "The moment the ordinary stops being obvious."},
    ]
    lmeval.write_task(tmp_path, docs, 32)
    scores = lmeval.score(EchoLM({d["prompt"]: d["reference"] for d in docs}), None, tmp_path, chat=False, limit=None)
    assert scores["exact_match"] == 1.0 and scores["jaccard"] == 1.0
    assert scores["rouge1"] == scores["rouge2"] == scores["rougeL"] == scores["rougeLsum"] == 1.0
    assert scores["bleu"] == pytest.approx(1.0)


def test_metric_functions_by_hand():
    r = task_utils.process_results({"reference": "the cat sat"}, ["the cat ran"])
    assert (
        r["exact_match"] == 0.0 and r["jaccard"] == pytest.approx(2 / 4) and r["bleu"] == ("the cat sat", "the cat ran")
    )
    assert r["rouge1"] == pytest.approx(2 / 3)


@pytest.fixture
def gguf_run(default_built, tmp_path):
    """A writable copy of the session's merged and converted default run: evaluation writes into it, and the shared
    runs stay as built (a GGUF built into the shared default_run changed what later tests found there)."""
    return copy_run(default_built[0], tmp_path / "outputs")


@pytest.mark.slow
def test_heldout_task_on_hf_and_gguf(gguf_run):
    section = lmeval.evaluate(gguf_run, ["hf", "gguf"], limit=3, max_gen_toks=16)
    by_backend = {r.backend: r.metrics for r in section.results}
    assert "hf" in by_backend and "gguf:f16" in by_backend and len(by_backend) >= 3
    names = {m.name for m in metrics.METRICS}  # BLEU included, on 0-1 like the rest
    assert "bleu" in names
    for scores in by_backend.values():
        assert names <= set(scores)
        assert all(0.0 <= scores[m] <= 1.0 for m in names)
    assert by_backend["hf"] == pytest.approx(by_backend["gguf:f16"], abs=1e-6)  # greedy f16 == HF (parity)
    lm_eval = manifest.read(gguf_run).lm_eval
    assert lm_eval.version and lm_eval.chat_template is True
    assert set(lm_eval.task_files) == {"affinage_heldout.yaml", "utils.py", "heldout.jsonl"}


class _Req:
    def __init__(self, *args):
        self.args = args


@pytest.mark.slow
def test_gguf_loglikelihood_matches_hf(gguf_run):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from eval.gguf_lm import GGUFLM

    m = manifest.read(gguf_run)
    merged = gguf_run / m.merge.path
    tok = AutoTokenizer.from_pretrained(merged)
    model = AutoModelForCausalLM.from_pretrained(merged, dtype=torch.float32)
    lm = GGUFLM(gguf_run / m.gguf.path / m.gguf.files["f16"].file)
    try:
        pairs = [
            ("The capital of France is", " Paris"),
            ("Waiting is time made", " visible."),
            ("<|im_start|>user\nWhat is wonder?<|im_end|>\n<|im_start|>assistant\n", "Wonder is the moment"),
        ]
        got = lm.loglikelihood([_Req(c, x) for c, x in pairs])
        for (context, cont), (ll, _) in zip(pairs, got, strict=True):
            ctx = tok(context)["input_ids"]
            whole = tok(context + cont)["input_ids"]
            with torch.no_grad():
                logp = torch.log_softmax(model(torch.tensor([whole])).logits[0].double(), -1)
            expected = sum(logp[i - 1, whole[i]].item() for i in range(len(ctx), len(whole)))
            assert ll == pytest.approx(expected, abs=0.05), (context, ll, expected)
    finally:
        lm.close()
