"""What make plan counts for a preference method (launch/preflight/preference_cost.py): two sequences per row in the
activations, a second bf16 reference copy only for a full fine-tune of DPO/KTO (none with LoRA, none for ORPO),
the reference's forward pass in the time, a pair's prompt once per side in the tokens, and the plan saying which
reference it is."""

from __future__ import annotations

import json
import math

from core import settings
from launch.preflight import estimate as est
from launch.preflight import preference_cost as cost
from tests.conftest import run_cli

LLAMA = "meta-llama/Llama-3.1-8B-Instruct"
LORA = {"adapter": "lora", "lora_r": 16, "lora_target_linear": True, "sequence_len": 1024, "micro_batch_size": 2}


def facts(config: dict) -> est.Model:
    return est.model_facts(config, LLAMA, settings.load().cache)


def test_lora_dpo_doubles_the_sequences_and_needs_no_reference_copy():
    sft, dpo = LORA, {**LORA, "rl": "dpo"}
    m = facts(sft)
    a, b = est.memory(m, sft, "none", 1, 80), cost.memory(m, dpo, "none", 1, 80)
    assert b.parts["activations"] == 2 * a.parts["activations"] and b.parts["logits"] == 2 * a.parts["logits"]
    assert b.parts["reference"] == 0 and b.parts["weights"] == a.parts["weights"]
    assert cost.memory(m, sft, "none", 1, 80).parts == a.parts  # SFT passes through unchanged


def test_a_full_dpo_fine_tune_holds_a_second_copy_sharded_with_zero3():
    full = {k: v for k, v in LORA.items() if not k.startswith(("adapter", "lora"))} | {"rl": "dpo"}
    m = facts(full)
    one = cost.memory(m, full, "none", 1, 80)
    assert one.parts["reference"] == m.params * 2 / est.GIB
    assert cost.memory(m, full, "zero3", 4, 80).parts["reference"] == one.parts["reference"] / 4
    assert cost.memory(m, {**full, "rl": "orpo"}, "none", 1, 80).parts["reference"] == 0  # reference-free


def test_time_adds_the_reference_forward_and_tokens_count_the_prompt_per_side(tmp_path):
    row = {"bf16_tflops": 100.0}
    m = facts(LORA)
    seconds = est.train_seconds(m, LORA, 1, row, 10_000)
    ratio = cost.train_seconds(m, {**LORA, "rl": "dpo"}, 1, row, 10_000) / seconds
    assert ratio == 1 + 2 * m.params / est.flops_per_token(m, LORA)
    assert cost.train_seconds(m, {**LORA, "rl": "orpo"}, 1, row, 10_000) == seconds
    pairs = tmp_path / "p.jsonl"
    record = {"prompt": "p" * 300, "chosen": "c" * 74, "rejected": "r" * 37}
    pairs.write_text(json.dumps(record) + "\n")
    config = {"rl": "dpo", "sequence_len": 4096, "datasets": [{"path": str(pairs), "type": "chatml.intel"}]}
    assert cost.training_tokens(config) == (math.ceil((2 * 300 + 74 + 37) / est.CHARS_PER_TOKEN), 1)


def test_make_plan_says_which_reference_a_preference_recipe_uses():
    out = run_cli("launch.preflight.plan", "qwen25-3b-instruct-brie-dpo", env={"HF_HUB_OFFLINE": "1"})
    assert out.returncode == 0, out.stderr
    assert "preference: rl dpo, reference model: adapter-disabled policy (no second copy)" in out.stdout
    assert "2 sequences per row" in out.stdout
