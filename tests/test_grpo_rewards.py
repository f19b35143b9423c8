"""GRPO's reward functions, called as TRL calls them (keywords, conversational completions, dataset columns): each
can fail (scores some completions 0). The judge rewards ask the scripted OpenAI-compatible judge of
tests/openai_server.py for real: scores become rewards, answers are cached, failed requests give no reward and a
step where every request failed stops training; pairwise rewards compare a prompt's group in both orders. Before
training a judge is measured for agreement with itself and refused below the floor with the figure."""

from __future__ import annotations

import pytest

import eval.reward_judge as reward_judge
from core import settings
from core.errors import UserError
from eval.rewards import end_of_turn_reward, format_reward, length_reward
from tests.openai_server import OpenAIServer, flaky_scores, hash_score, scripted_scores

PROMPT = [{"role": "user", "content": "Describe the sea at night."}]


def said(*texts: str) -> list[list[dict]]:
    return [[{"role": "assistant", "content": t}] for t in texts]


@pytest.fixture(autouse=True)
def fresh_judges(outputs, monkeypatch):
    """Each test its own judge address, cache folder (under OUTPUTS) and no retry waits."""
    monkeypatch.setenv("JUDGE_RETRIES", "0")
    reward_judge._asker.cache_clear()
    yield
    reward_judge._asker.cache_clear()


def test_format_reward_fails_empty_leaky_turn_taking_and_echoing_completions():
    texts = [
        "A dark mirror that breathes.",
        "   ",
        "Waves.<|im_end|><|im_start|>user",
        "Calm water.\nUser: and the moon?",
        "Describe the sea at night. It is dark.",
    ]
    assert format_reward(prompts=[PROMPT] * 5, completions=said(*texts)) == [1.0, 0.0, 0.0, 0.0, 0.0]
    shaped = format_reward(prompts=[PROMPT] * 2, completions=said("Answer: 42", "42"), format=[r"Answer: \d+"] * 2)
    assert shaped == [1.0, 0.0]


def test_length_reward_peaks_at_the_target_and_fails_empty_or_cut_off_completions():
    ids = [[1] * 8, [], [1] * 16, [1] * 4]
    got = length_reward(completions=said("a", "", "b", "c"), completion_ids=ids, max_completion_length=[16] * 4)
    assert got == [1.0, 0.0, 0.0, 0.5]
    assert length_reward(completions=said("a"), completion_ids=[[1] * 3], max_completion_length=[16], target_tokens=[3])
    assert length_reward(completions=said("a"), completion_ids=[[1] * 3], max_completion_length=[16]) == [0.375]


def test_end_of_turn_reward_is_one_only_when_the_model_ended_its_turn():
    ids = [[5, 6, 2], [5, 6, 7], []]
    assert end_of_turn_reward(completions=said("x", "y", ""), completion_ids=ids, eos_token_id=[2] * 3) == [1, 0, 0]


def test_a_judge_reward_is_named_by_its_judge_and_unknown_judges_are_refused():
    reward = reward_judge.score_local
    assert reward.__name__ == "judge_score_local" and reward.judge == "local" and callable(reward.before_training)
    assert reward_judge.pairwise_gemini_2_5_flash_lite.judge == "gemini-2.5-flash-lite"
    with pytest.raises(AttributeError, match="score_<judge> or pairwise_<judge>, <judge> one of .*local"):
        reward_judge.score_nobody  # noqa: B018 - the attribute lookup is what is tested


def test_score_rewards_come_from_the_judge_and_are_cached(monkeypatch):
    texts = ["The sea is a slow lung.", "Black glass under stars.", "The sea is a slow lung."]
    logged = {}
    with OpenAIServer(scripted_scores()) as server:
        monkeypatch.setenv("JUDGE_URL", server.url)
        got = reward_judge.score_local(prompts=[PROMPT] * 3, completions=said(*texts), log_metric=logged.__setitem__)
        asked = len(server.bodies)
        again = reward_judge.score_local(prompts=[PROMPT] * 3, completions=said(*texts))
        assert len(server.bodies) == asked <= 3  # the second step asked nothing: every answer was cached
    assert got == again == [(hash_score(t) - 1) / 9 for t in texts]
    assert logged == {"judge/local/failed": 0.0}
    body = server.bodies[0]
    assert body["response_format"]["schema"]["required"] == ["score"]  # llama.cpp's structured output, our schema


def test_a_failed_request_gives_no_reward_and_a_step_where_all_fail_stops_training(monkeypatch):
    with OpenAIServer(scripted_scores()) as server:
        monkeypatch.setenv("JUDGE_URL", server.url)
        got = reward_judge.score_local(prompts=[PROMPT] * 2, completions=said("Calm.", "[5xx-twice] Rough."))
    assert got[0] is not None and got[1] is None  # 500 with no retries left: no reward for that completion
    reward_judge._asker.cache_clear()
    monkeypatch.setenv("JUDGE_URL", "http://127.0.0.1:9/v1")  # nothing listens there
    with pytest.raises(RuntimeError, match="every request of this step failed"):
        reward_judge.score_local(prompts=[PROMPT], completions=said("Calm."))


def test_pairwise_rewards_compare_each_group_in_both_orders(monkeypatch):
    other = [{"role": "user", "content": "And the desert?"}]
    prompts = [PROMPT, PROMPT, other, other]
    completions = said("Long and dark and breathing.", "Dark.", "Sand.", "Sand, wind and a long silence.")
    logged: dict[str, float] = {}
    with OpenAIServer(scripted_scores()) as server:
        monkeypatch.setenv("JUDGE_URL", server.url)
        got = reward_judge.pairwise_local(prompts=prompts, completions=completions, log_metric=logged.__setitem__)
        assert len(server.bodies) == 4  # one pair per group, both orders
    assert got == [1.0, 0.0, 0.0, 1.0] and logged["judge/local/position_consistency"] == 1.0
    reward_judge._asker.cache_clear()
    with OpenAIServer(flaky_scores()) as server:  # always "A": the orders disagree, every pair is a tie
        monkeypatch.setenv("JUDGE_URL", server.url)
        got = reward_judge.pairwise_local(prompts=prompts, completions=completions, log_metric=logged.__setitem__)
    assert got == [0.5] * 4 and logged["judge/local/position_consistency"] == 0.0


@pytest.mark.parametrize("mode", ["score", "pairwise"])
def test_the_judge_is_measured_before_training_and_refused_below_the_floor(mode, monkeypatch):
    n = len(reward_judge.calibration())
    with OpenAIServer(scripted_scores()) as server:
        monkeypatch.setenv("JUDGE_URL", server.url)
        record = reward_judge.measure("local", mode, settings.load())
    assert record["consistency"] == 1.0 and record["agreed"] == record["n"] == (2 * n if mode == "score" else n)
    assert record["endpoint"] == server.url and record["floor"] == 0.5 and record["mode"] == mode
    with OpenAIServer(flaky_scores()) as server:
        monkeypatch.setenv("JUDGE_URL", server.url)
        with pytest.raises(UserError, match=r"agrees with itself too rarely: 0 of \d+ .*\(0 % < the 50 % floor\)"):
            reward_judge.measure("local", mode, settings.load())
        monkeypatch.setenv("JUDGE_MIN_CONSISTENCY", "0")
        assert (
            reward_judge.measure("local", mode, settings.load())["consistency"] == 0.0
        )  # accepted on purpose, and recorded


def test_a_judge_that_does_not_answer_is_refused_before_training(monkeypatch):
    monkeypatch.setenv("JUDGE_URL", "http://127.0.0.1:9/v1")
    with pytest.raises(UserError, match="the reward judge 'local' did not answer at http://127.0.0.1:9/v1"):
        reward_judge.measure("local", "score", settings.load())
