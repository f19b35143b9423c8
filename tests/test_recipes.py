"""Every recipe in recipes/ resolves, passes the offline preflight and is accepted by axolotl's validator.
Parametrized over the folder, so a new recipe is covered without touching this file."""

from __future__ import annotations

import contextlib
import io

import pytest
import yaml

from core import settings
from core.errors import UserError
from core.paths import FRAGMENTS, REPO
from launch.preflight import schema as axolotl_schema
from launch.preflight.checks import run_checks
from resolver import profiles, show
from resolver.registry import list_recipes, load_recipe
from resolver.resolve import resolve
from resolver.table import rows

RECIPES = list_recipes()
SEED_RECIPES = {
    "qwen25-05b-instruct-brie",
    "qwen25-3b-instruct-brie",
    "llama32-3b-instruct-brie",
    "qwen3-06b-brie",
    "llama3-8b",
    "llama3-8b-instruct",
    "llama31-8b-instruct",
    "mistral-7b",
    "mistral-7b-instruct",
    "qwen25-14b",
    "qwen25-14b-instruct",
    "gemma3-27b",
    "qwen3-32b",
    "smollm2-135m-cpu",
}


def test_every_seed_model_has_a_recipe():
    assert set(RECIPES) >= SEED_RECIPES


@pytest.mark.parametrize("name", RECIPES)
def test_recipe_passes_offline_check(name, roomy_disk):
    _, findings = run_checks(name, settings.load())
    errors = [str(f) for f in findings if f.level == "error"]
    assert not errors, "\n".join(errors)
    checks = {f.check for f in findings if f.level == "ok"}
    assert {"schema", "data", "lora targets", "disk"} <= checks


@pytest.mark.parametrize("device", ["cpu", "gpu"])
@pytest.mark.parametrize("name", RECIPES)
def test_show_output_is_accepted_by_axolotl(name, device, monkeypatch):
    monkeypatch.setenv("DEVICE", device)
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        assert show.main([name]) == 0
    text = buf.getvalue()
    assert text.startswith(f"# {name} for {device}")
    config = yaml.safe_load(text)
    assert "meta" not in config and "extends" not in config
    recipe = load_recipe(name)
    normalized = axolotl_schema.validate(config, device, recipe.meta.gpu.type, max(recipe.meta.gpu.count, 1))
    assert normalized["base_model"] == config["base_model"]
    if device == "cpu":
        assert not config.get("bf16") and not config.get("sample_packing") and "flash_attention" not in config
        assert "plugins" not in config and not any(k.startswith("liger_") for k in config)
        assert config["lora_mlp_kernel"] is False and config["attn_implementation"] == "eager"
    elif recipe.meta.gpu.count > 0:
        assert (
            config["attn_implementation"] == "flash_attention_2"
            and (config["sample_packing"] or config.get("rl"))  # TRL's preference trainers do not pack
            and config["bf16"] == "auto"
        )
        assert "axolotl.integrations.liger.LigerPlugin" in config["plugins"]


def test_seed_hyperparameters():
    brie3b = load_recipe("qwen25-3b-instruct-brie").config
    assert (brie3b["lora_r"], brie3b["lora_alpha"], brie3b["lora_dropout"]) == (16, 32, 0.05)
    assert (brie3b["num_epochs"], brie3b["micro_batch_size"], brie3b["gradient_accumulation_steps"]) == (2, 2, 4)
    assert (brie3b["learning_rate"], brie3b["lr_scheduler"], brie3b["warmup_steps"], brie3b["sequence_len"]) == (
        2e-4,
        "linear",
        20,
        2048,
    )
    assert brie3b["lora_target_modules"] == [
        "q_proj",
        "k_proj",
        "v_proj",
        "o_proj",
        "gate_proj",
        "up_proj",
        "down_proj",
    ]
    small = load_recipe("qwen25-05b-instruct-brie").config
    assert (small["lora_r"], small["lora_alpha"]) == (8, 16)
    persona = load_recipe("llama31-8b-instruct").config
    assert (persona["lora_r"], persona["lora_alpha"], persona["num_epochs"], persona["sequence_len"]) == (
        64,
        128,
        6,
        512,
    )
    assert (persona["micro_batch_size"], persona["gradient_accumulation_steps"]) == (4, 2)
    assert load_recipe("qwen3-32b").config["gradient_checkpointing"] is True
    assert load_recipe("llama32-3b-instruct-brie").config["eot_tokens"] == ["<|eot_id|>"]


def test_registry_lists_every_recipe():
    table = rows()
    assert [r["name"] for r in table] == RECIPES
    assert {r["name"]: r["gpus"] for r in table}["smollm2-135m-cpu"] == "CPU"


def test_fragment_null_removes_keys_inherited_from_earlier_fragments(tmp_path):
    path = tmp_path / "full-ft.yaml"
    path.write_text(f"extends: [{REPO / 'recipes/smollm2-135m-cpu.yaml'}, {FRAGMENTS / 'method/full.yaml'}]\n")
    recipe = load_recipe(str(path))
    assert recipe.meta.method == "full"
    assert not {"adapter", "lora_r", "lora_alpha", "lora_target_modules"} & set(recipe.config)
    assert recipe.config["learning_rate"] == 1e-3  # everything else still inherited


def test_keys_remember_their_file_and_line():
    recipe = load_recipe("qwen25-3b-instruct-brie")
    text = (REPO / "recipes/qwen25-3b-instruct-brie.yaml").read_text().splitlines()
    where = recipe.where("lora_r")
    assert where.file == "recipes/qwen25-3b-instruct-brie.yaml" and text[where.line - 1].startswith("lora_r:")
    where = recipe.where("learning_rate")
    assert where.file == "recipes/fragments/training/brie.yaml"
    where = recipe.where("datasets[0].path")
    assert (
        where.file == "recipes/fragments/data/philosophy-chat.yaml"
        and "path:" in (FRAGMENTS / "data/philosophy-chat.yaml").read_text().splitlines()[where.line - 1]
    )


def test_extends_loop_is_refused(tmp_path):
    (tmp_path / "a.yaml").write_text("extends: [b.yaml]\nmeta: {}\n")
    (tmp_path / "b.yaml").write_text("extends: [a.yaml]\n")
    with pytest.raises(UserError, match="extends loop"):
        load_recipe(str(tmp_path / "a.yaml"))


def test_cpu_profile_turns_qlora_into_lora():
    config, notes = profiles.apply({"adapter": "qlora", "load_in_4bit": True, "bf16": "auto"}, "cpu")
    assert config["adapter"] == "lora" and config["load_in_4bit"] is False and config["bf16"] is False
    assert any("qlora" in n for n in notes)
    same, notes = profiles.apply({"adapter": "qlora", "load_in_4bit": True}, "gpu")
    assert same == {"adapter": "qlora", "load_in_4bit": True} and notes == []


def test_overrides_apply_last_and_null_removes():
    r = resolve(
        "qwen25-3b-instruct-brie",
        settings.load(),
        device="cpu",
        args="--bf16=true --lora_r 4 --datasets.0.path=x.jsonl --test_datasets=null",
    )
    assert r.config["bf16"] is True and r.config["lora_r"] == 4 and r.config["datasets"][0]["path"] == "x.jsonl"
    assert "test_datasets" not in r.config


def test_override_values_keep_yaml_1_1_words_as_strings():
    from resolver.overrides import parse

    assert parse("--eval_strategy=no --bf16=true --fp16=False --lora_r=8 --x=null --y=on") == {
        "eval_strategy": "no",
        "bf16": True,
        "fp16": False,
        "lora_r": 8,
        "x": None,
        "y": "on",
    }
