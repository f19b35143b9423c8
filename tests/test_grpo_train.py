"""GRPO end to end on CPU, for real (axolotl's rl: grpo, TRL's GRPOTrainer, generation with transformers): the
embedded recipe starts from the session's SFT run, trains two steps on the brie suite's training part with a format
reward, a length reward and a judge reward answered by the scripted local OpenAI-compatible judge
(tests/openai_server.py: a score from the response's hash, so deterministic). The judge is measured before training
and its figure recorded; every step's rewards are in the manifest, the judge reward is what the judge said, the
adapter changed; make judge refuses the reward judge and scores the run on the suite's held-out part only."""

from __future__ import annotations

import json
import shutil

import pytest

from core import manifest, rundir, settings
from core.errors import UserError
from core.paths import REPO
from tests.openai_server import OpenAIServer, hash_score, scored_response, scripted_scores

CALIBRATION_REQUESTS = 24  # 6 calibration pairs: 12 responses, each scored twice


@pytest.mark.slow
def test_grpo_from_the_sft_run_with_a_format_and_a_judge_reward(default_run, outputs, monkeypatch):
    from safetensors import safe_open

    from eval import grpo_data, leaderboard, prefs_split
    from eval.generate import load_suite
    from eval.judge import run_judging
    from launch.train import train

    sft = outputs / "runs" / "smollm2-135m-cpu" / default_run[0].name
    shutil.copytree(default_run[0], sft)
    rundir.mark_latest(sft)
    with OpenAIServer(scripted_scores()) as server:
        monkeypatch.setenv("JUDGE_URL", server.url)
        run = train("smollm2-135m-cpu-grpo", "--max_steps=2 --save_steps=2", s=settings.load())
        asked = [scored_response(b["messages"][-1]["content"]) for b in server.bodies]
    m = manifest.read(run)
    assert m.train.start_from.run == str(sft) and m.train.base_model.path == str(sft / "merged")
    assert m.train.preference.rl == "grpo" and m.train.preference.reference == "none (beta 0: no KL term)"

    judge = m.train.grpo.judges["eval.reward_judge.score_local"]  # measured before training, recorded
    assert (judge.n, judge.agreed, judge.consistency, judge.endpoint) == (12, 12, 1.0, server.url)
    assert m.train.grpo.num_generations == 2 and m.train.grpo.generation.startswith("transformers generate")

    steps = m.train.summary.rewards
    assert [s.step for s in steps] == [1, 2]
    names = {"format_reward", "length_reward", "judge_score_local"}
    for s in steps:
        assert set(s.functions) == names and all(v is not None for v in s.functions.values()), s
        assert s.reward is not None and s.metrics["judge/local/failed"] == 0.0
        weighted = s.functions["format_reward"] + 0.5 * s.functions["length_reward"] + s.functions["judge_score_local"]
        assert s.reward == pytest.approx(weighted, abs=1e-3)  # TRL's weighted sum, as the recipe weights it
    assert m.train.summary.first_reward == steps[0].reward and m.train.summary.final_reward == steps[-1].reward

    # the judge reward is what the judge said about the completions generated in training (2 per step)
    completions = [r for r in asked[CALIBRATION_REQUESTS:] if r is not None]
    assert 1 <= len(completions) <= 4
    if len(set(completions)) == 4:  # each step's mean over its own two completions, asked in step order
        means = [sum((hash_score(r) - 1) / 9 for r in completions[i : i + 2]) / 2 for i in (0, 2)]
        assert sorted(s.functions["judge_score_local"] for s in steps) == pytest.approx(sorted(means), abs=1e-3)

    final = m.train.final_checkpoint
    with safe_open(run / final.path / final.file, "pt") as fh:
        b = [fh.get_tensor(k) for k in fh.keys() if "lora_B" in k]  # noqa: SIM118 - a safetensors handle
    assert b and any(t.abs().max().item() > 0 for t in b)  # LoRA B starts at zero: the adapter changed

    suite = REPO / "eval" / "suites" / "brie.jsonl"
    with pytest.raises(UserError, match="'local' is the reward judge of the GRPO run"):
        run_judging(run, ["local"], suite, limit=2, s=settings.load())
    items = load_suite(suite)
    kept, held = prefs_split.restrict(run, items, print, grpo_data.sources(run))
    _, heldout = prefs_split.split(items)
    assert kept == heldout and (held.n, held.of, held.excluded) == (10, 62, 52)

    text = leaderboard.tables(leaderboard.collect(settings.load().outputs))
    assert "### base -> smollm2-135m-cpu -> smollm2-135m-cpu-grpo" in text
    row = next(
        line
        for line in text.splitlines()
        if line.startswith(f"| smollm2-135m-cpu-grpo | smollm2-135m-cpu-grpo/{run.name}")
    )
    assert f"{steps[-1].reward:.3f} / - (GRPO mean reward)" in row
    assert json.loads((run / m.train.summary.log_history).read_text())["log_history"][0]["step"] == 1
