"""`make leaderboard` over real runs: tables from manifests, PNG plots, loss curves read from TensorBoard."""

from __future__ import annotations

import pytest

from core import manifest, settings
from core.paths import REPO
from eval import leaderboard, lmeval
from eval.judge import run_judging
from tests.openai_server import OpenAIServer
from tests.shared_runs import copy_run


@pytest.mark.slow
def test_leaderboard_from_an_evaluated_run(default_run, monkeypatch, tmp_path):
    outputs = tmp_path / "outputs"
    run = copy_run(default_run[0], outputs)  # evaluation and judging write into the run
    monkeypatch.setenv("OUTPUTS", str(outputs))
    lmeval.evaluate(run, ["hf", "base"], limit=2, max_gen_toks=8)  # the base model on the same documents
    with OpenAIServer() as judge:  # a scripted judge: the leaderboard's judge columns and win-rate plot
        monkeypatch.setenv("JUDGE_URL", judge.url)
        run_judging(
            run, ["local"], REPO / "eval" / "suites" / "brie.jsonl", limit=1, max_new_tokens=8, s=settings.load()
        )
    result = leaderboard.build(settings.load().outputs)
    folder = outputs / "leaderboard"
    text = (folder / "leaderboard.md").read_text()
    assert result["runs"] >= 1 and f"smollm2-135m-cpu/{run.name}" in text
    assert "| 1 | smollm2-135m-cpu/" in text and "HuggingFaceTB/SmolLM2-135M-Instruct" in text
    # the backend column names what produced the row: here transformers on the CPU in float32
    tuned = next(
        line
        for line in text.splitlines()
        if f"smollm2-135m-cpu/{run.name}" in line and "| hf (hf:cpu:float32) |" in line
    )
    assert "(95 % CI)" in text and " [" in tuned  # every score with its interval, never a bare rank
    assert "| base: HuggingFaceTB/SmolLM2-135M-Instruct |" in text and "(this is the base model)" in text
    assert "vs base" in text and "base not scored" not in tuned and ", p " in tuned  # beside its base, tested
    for image in ("metrics.png", "loss_curves.png", "win_rates.png"):
        assert image in result["images"] and (folder / image).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    rows = leaderboard.collect(settings.load().outputs)
    assert rows[0]["loss"] and all(isinstance(v, float) for _, v in rows[0]["loss"])  # from TensorBoard events
    assert manifest.read(run).judge and "| local |" in text
