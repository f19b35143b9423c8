"""make check of a GRPO recipe (launch/preflight/grpo.py, grpo_rewards.py, data/grpo_kinds.py): each reward function
imports and takes what TRL passes (its columns included), num_generations divides the generation batch, the
generation settings fit sequence_len with the longest prompt as the chat template renders it, vLLM is refused on
a CPU, the eos is the chat's end of turn, and the dataset is a prompt set. The embedded recipe passes (and every
recipe in recipes/ is checked by tests/test_recipes.py)."""

from __future__ import annotations

import json

import pytest

from core import settings
from launch.preflight.grpo import check_grpo, check_grpo_lengths
from launch.preflight.grpo_rewards import load_reward, signature_problems
from resolver.resolve import resolve
from tests.conftest import run_cli

RECIPE = "smollm2-135m-cpu-grpo"


def positional_reward(prompts, completions, /, **kwargs):  # TRL passes keywords only
    return [0.0] * len(completions)


def needs_answer(prompts, completions, answer, **kwargs):
    return [float(a in c[0]["content"]) for c, a in zip(completions, answer, strict=True)]


def no_kwargs(prompts, completions):
    return [0.0] * len(completions)


def errors(args: str) -> list[str]:
    r = resolve(RECIPE, settings.load(), device="cpu", args=args)
    findings = check_grpo(r) + check_grpo_lengths(r)  # the cheap checks, then the tokenizer's
    return [f"{f.where}: {f.message}" for f in findings if f.level == "error"]


def test_the_embedded_grpo_recipe_passes_make_check():
    out = run_cli("launch.preflight", RECIPE)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert "rl: grpo, 2 generations of up to 16 tokens per prompt (generation batch 2)" in out.stdout
    assert "reward function eval.reward_judge.score_local: judge local" in out.stdout
    assert "generation stops at the eos '<|im_end|>'" in out.stdout
    assert "brie.jsonl: 62 records of type eval.grpo_suite, all valid" in out.stdout


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ("--trl.num_generations=3", "trl.num_generations 3 does not divide the generation batch 2"),
        ("--trl.num_generations=1", "needs 2 or more"),
        ("--trl.max_completion_length=300", "leaves no room for a prompt in sequence_len 256"),
        ("--trl.max_completion_length=230", "prompts plus max_completion_length 230 exceed sequence_len 256"),
        ("--trl.max_completion_length=null", "trl.max_completion_length is not set"),
        ("--trl.reward_funcs=[eval.rewards.nothing]", "reward function eval.rewards.nothing: module 'eval.rewards'"),
        ("--trl.reward_funcs=[nowhere.reward]", "no module 'nowhere'"),
        ("--trl.reward_funcs=[tests.test_grpo_check.positional_reward]", "prompts, completions is positional-only"),
        ("--trl.reward_funcs=[tests.test_grpo_check.needs_answer]", "needs a column 'answer' the dataset does not"),
        ("--trl.reward_funcs=[tests.test_grpo_check.no_kwargs]", "TRL also passes completion_ids, eos_token_id"),
        ("--trl.reward_funcs=[]", "trl.reward_funcs is empty"),
        ("--trl.reward_weights=[1.0]", "trl.reward_weights has 1 weights for 3 reward functions"),
        ("--trl.use_vllm=true", "vLLM generates on a GPU"),
        ("--special_tokens.eos_token=<|endoftext|>", "ends a turn with '<|im_end|>', but the tokenizer's eos is"),
    ],
)
def test_make_check_refuses_what_grpo_cannot_train(args, expected):
    found = errors(args)
    assert any(expected in e for e in found), found


def test_the_findings_name_the_key():
    found = errors("--trl.reward_funcs=[eval.rewards.format_reward,nowhere.reward] --trl.reward_weights=null")
    assert len(found) == 1 and "ARGS, key 'trl.reward_funcs.1'" in found[0], found  # ARGS set it: ARGS is named


def test_a_prompts_file_gives_its_own_columns_to_the_rewards(tmp_path):
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text(json.dumps({"prompt": "Name a colour.", "answer": "blue"}) + "\n")
    data = f"--datasets.0.path={prompts} --datasets.0.type=eval.grpo_prompts"
    assert errors(f"{data} --trl.reward_funcs=[tests.test_grpo_check.needs_answer] --trl.reward_weights=null") == []


@pytest.mark.parametrize(
    ("dtype", "expected"),
    [
        ("chat_template.default", "is a preference-pairs type; GRPO trains on prompts"),
        ("eval.grpo_data.grpo_suite", "axolotl loads a GRPO dataset transform only as module.function"),
    ],
)
def test_the_data_check_wants_a_prompt_set(dtype, expected):
    from data.kinds import kind_of

    assert expected in kind_of({"path": "x.jsonl", "type": dtype}, rl="grpo").error


def test_prompt_rows_are_validated():
    from data.grpo_kinds import prompt_row, suite_line

    assert (
        prompt_row({"prompt": "Hi"}) is None and prompt_row({"messages": [{"role": "user", "content": "Hi"}]}) is None
    )
    assert "end with the user's turn" in prompt_row({"prompt": [{"role": "assistant", "content": "Hi"}]})
    assert "no 'prompt'" in prompt_row({"question": "Hi"}) and "empty" in prompt_row({"prompt": " "})
    assert suite_line({"prompt": "Hi"}) is None and "needs a non-empty string" in suite_line({"text": "Hi"})


def test_reward_loading_matches_axolotls_rules():
    assert load_reward("eval.rewards.format_reward")[0] is not None
    assert load_reward("Skywork/Skywork-Reward-V2-Llama-3.1-8B") == (None, None)  # axolotl: a reward model
    assert "not installed" not in (load_reward("nowhere.reward")[1] or "")
    assert signature_problems(lambda prompts, completions, **kw: [], frozenset()) == []


def test_the_telemetry_of_every_run_survives_grpos_batches():
    """GRPO's training step is handed the dataset rows (a list): the telemetry plugin failed the first step with
    "'list' object has no attribute 'get'". It counts no tokens there, and claims no tokens/s or MFU."""
    from launch.telemetry import sample_lengths, slots
    from launch.telemetry_record import mfu, timed

    rows = [{"prompt": [{"role": "user", "content": "Hi"}], "eos_token_id": 2}]
    assert sample_lengths(rows) == [] and slots(rows) == 0
    record = {"device": "NVIDIA H100 80GB HBM3", "model": {"matmul_frozen": 10, "matmul_trained": 1}}
    record["steps"] = [{"step": i, "seconds": 1.0, "tokens": 0, "slots": 0, "sq": 0, "samples": 0} for i in range(9)]
    assert timed(record)["tokens_per_s"] is None and mfu(record, None)[0] is None
