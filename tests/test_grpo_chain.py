"""A GRPO run in the chain, without training (run directories made on disk, tests/judged_runs.py): make judge scores
it against its start run on the held-out part of the suite it trained on only, refuses the judge that gave it its
reward (by name, or the same model at the same endpoint), refuses a prompt set that changed since; the leaderboard
shows base -> SFT -> GRPO with the mean rewards; make plan counts generation's memory and time."""

from __future__ import annotations

import json
import shutil

import pytest

from core import manifest, settings
from core.errors import UserError
from core.hashing import sha256_file
from core.manifest import GrpoRecord, PreferenceRecord, RewardStep, TrainSummary
from core.paths import REPO
from core.sections import RewardJudgeRecord
from eval import judge as judge_mod
from eval import leaderboard
from eval.judge import run_judging
from eval.prefs_split import split
from launch.preflight import estimate as est
from launch.preflight import grpo_cost
from tests.conftest import run_cli
from tests.judged_runs import fake_for_run, make_run, prefers_candidate, rows
from tests.openai_server import OpenAIServer


def grpo_run(outputs, sft, suite, judge_model="local", endpoint="http://127.0.0.1:8080/v1"):
    run = make_run(outputs, "grpo", datasets=[str(suite)], start_from=sft)
    (run / "config.yaml").write_text(
        json.dumps({"rl": "grpo", "datasets": [{"path": str(suite), "type": "eval.grpo_suite"}]})
    )
    m = manifest.read(run)
    judge = RewardJudgeRecord(
        judge="local", mode="score", model=judge_model, endpoint=endpoint, n=12, agreed=12, consistency=1.0, floor=0.5
    )
    steps = [RewardStep(step=1, reward=0.4, functions={"format_reward": 1.0}), RewardStep(step=2, reward=0.6)]
    train = m.train.model_copy(
        update={
            "datasets": [m.train.datasets[0].model_copy(update={"sha256": sha256_file(suite)})],
            "preference": PreferenceRecord(rl="grpo", beta=0.0, reference="none (beta 0: no KL term)"),
            "grpo": GrpoRecord(reward_funcs=["eval.reward_judge.score_local"], judges={"score_local": judge}),
            "summary": TrainSummary(global_step=2, rewards=steps, first_reward=0.4, final_reward=0.6),
        }
    )
    manifest.write_sections(run, train=train)
    return run


@pytest.fixture
def chain_runs(outputs, tmp_path, monkeypatch):
    made = []
    monkeypatch.setattr(judge_mod, "for_run", fake_for_run(made))
    suite = tmp_path / "brie.jsonl"
    shutil.copyfile(REPO / "eval" / "suites" / "brie.jsonl", suite)
    sft = make_run(outputs, "sft", datasets=["data/samples/philosophy_chat.val.jsonl"])
    return sft, grpo_run(outputs, sft, suite), suite, made


def test_a_grpo_run_is_judged_on_the_held_out_prompts_by_another_judge(chain_runs, monkeypatch):
    sft, run, suite, made = chain_runs
    with OpenAIServer(prefers_candidate) as server:
        monkeypatch.setenv("JUDGE_URL", server.url)
        with pytest.raises(UserError, match="'local' is the reward judge of the GRPO run grpo/.*learned to please"):
            run_judging(run, ["local"], suite, s=settings.load())
        assert not made and not server.bodies  # refused before anything was generated or asked
        monkeypatch.setenv("OPENAI_BASE_URL", server.url)
        monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
        section = run_judging(run, ["gpt-4o"], suite, s=settings.load())
    _, held = split([{"prompt": json.loads(x)["prompt"]} for x in suite.read_text().splitlines()])
    judged = {g["prompt"] for g in rows(run / "judge" / "generations.jsonl")}
    assert judged == {h["prompt"] for h in held} and section.heldout.n == len(held) == 10  # a fifth of the prompts
    assert section.heldout.of == 62 and section.heldout.excluded == 52 and "(GRPO)" in section.heldout.sources[0]
    assert section.baseline == f"start run {sft.name} (sft)"


def test_the_reward_judge_is_refused_under_another_name_too(outputs, tmp_path, monkeypatch):
    suite = tmp_path / "brie.jsonl"
    shutil.copyfile(REPO / "eval" / "suites" / "brie.jsonl", suite)
    sft = make_run(outputs, "sft")
    run = grpo_run(outputs, sft, suite, judge_model="gpt-4o", endpoint="http://127.0.0.1:7/v1")
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:7/v1")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    with pytest.raises(UserError, match="judge 'gpt-4o' is the reward judge of the GRPO run"):
        run_judging(run, ["gpt-4o"], suite, s=settings.load())


def test_a_prompt_set_changed_since_training_is_refused(chain_runs, monkeypatch):
    _, run, suite, _ = chain_runs
    suite.write_text(suite.read_text() + json.dumps({"prompt": "A new prompt."}) + "\n")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    with pytest.raises(UserError, match="trained on the prompts .* which are changed since"):
        run_judging(run, ["gpt-4o"], suite, s=settings.load())


def test_the_leaderboard_shows_base_sft_grpo_with_the_mean_rewards(chain_runs):
    _, run, _, _ = chain_runs
    text = leaderboard.tables(leaderboard.collect(settings.load().outputs))
    assert "### base -> sft -> grpo" in text
    row = next(line for line in text.splitlines() if line.startswith(f"| grpo | grpo/{run.name}"))
    assert "0.400 / 0.600 / - (GRPO mean reward)" in row


def test_generation_memory_and_time_are_counted():
    config = {
        "rl": "grpo",
        "adapter": "lora",
        "lora_r": 16,
        "lora_target_linear": True,
        "sequence_len": 1024,
        "micro_batch_size": 4,
        "gradient_accumulation_steps": 4,
        "datasets": [{"path": "eval/suites/brie.jsonl", "type": "eval.grpo_suite"}],
        "trl": {"num_generations": 8, "max_completion_length": 512, "reward_funcs": ["eval.rewards.format_reward"]},
    }
    m = est.model_facts(config, "meta-llama/Llama-3.1-8B-Instruct", settings.load().cache)
    mem = grpo_cost.memory(m, config, "none", 1, 80)
    length = grpo_cost.trained_length(config)
    assert mem.parts["generation (KV cache)"] * est.GIB == 16 * length * 2 * m.layers * m.kv_dim * 2.0
    vllm = {**config, "trl": {**config["trl"], "use_vllm": True, "vllm_mode": "server"}}
    assert grpo_cost.memory(m, vllm, "none", 1, 80).parts["generation (KV cache)"] == 0
    row = {"bf16_tflops": 989.0, "hbm_gb_per_s": 3350.0}
    tokens, prompts = grpo_cost.training_tokens(config)
    assert prompts == 50 and tokens == 50 * 8 * (grpo_cost.prompts(config)[1] + 512)
    generation = grpo_cost.generation_seconds(m, config, 1, row)
    assert generation == 25 * 512 * (m.params * 2.0 / 3350e9 + grpo_cost.HF_STEP_S)  # 400 completions / 16
    assert grpo_cost.train_seconds(m, config, 1, row, tokens) > generation


def test_make_plan_says_what_generation_costs():
    out = run_cli("launch.preflight.plan", "qwen25-3b-instruct-brie-grpo", env={"HF_HUB_OFFLINE": "1"})
    assert out.returncode == 0, out.stderr
    assert "GRPO: 8 completions of up to 384 tokens per prompt, generation batch 16, by a vLLM server" in out.stdout
    assert "its memory on the vLLM server's own GPU" in out.stdout
    out = run_cli(
        "launch.preflight.plan",
        "qwen25-3b-instruct-brie-grpo",
        "--args=--trl.use_vllm=false",
        env={"HF_HUB_OFFLINE": "1"},
    )
    assert out.returncode == 0, out.stderr
    assert "generation (KV cache) 0.2" in out.stdout and "GiB in training's memory" in out.stdout
