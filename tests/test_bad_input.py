"""Bad input gets a clear error that names the file, line or key, and a non-zero exit; never a traceback."""

from __future__ import annotations

import json

import pytest

from core import settings
from core.errors import UserError
from launch.preflight.checks import run_checks
from resolver.registry import load_recipe
from tests.conftest import run_cli, write_recipe


@pytest.fixture(autouse=True)
def _roomy(roomy_disk):
    """These cases are about the recipe, not this machine's free space (tests/test_disk.py covers that)."""


def errors(name: str, args: str | None = None) -> list:
    _, findings = run_checks(name, settings.load(), args)
    return [f for f in findings if f.level == "error"]


def test_unknown_recipe_name_suggests_close_matches():
    with pytest.raises(UserError) as exc:
        load_recipe("qwen25-3b-brie")
    assert "unknown recipe 'qwen25-3b-brie'" in str(exc.value)
    assert "qwen25-3b-instruct-brie" in exc.value.hint


def test_unknown_recipe_on_the_cli_is_one_line_not_a_traceback():
    proc = run_cli("resolver.show", "llama31-8b-instrct")
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert "unknown recipe 'llama31-8b-instrct'" in proc.stderr and "llama31-8b-instruct" in proc.stderr


def test_unknown_config_key_names_file_line_and_the_likely_key(tmp_path):
    path = write_recipe(tmp_path / "typo.yaml", "lora_dropuot: 0.1\n")
    [err] = errors(str(path))
    assert err.check == "schema" and "lora_dropuot" in err.message
    assert err.where.file.endswith("typo.yaml") and err.where.line == 2
    assert "lora_dropout" in err.hint


def test_unknown_dataset_key(tmp_path):
    path = write_recipe(
        tmp_path / "ds.yaml",
        "datasets:\n  - path: data/samples/philosophy_chat.train.jsonl\n"
        "    type: chat_template\n    field_mesages: messages\n",
    )
    errs = errors(str(path))
    assert any("datasets[0].field_mesages" in e.message and "field_messages" in (e.hint or "") for e in errs)


def test_missing_dataset_file():
    [err] = errors("qwen25-3b-instruct-brie", "--datasets.0.path=data/nope.jsonl")
    assert "dataset file not found" in err.message and "nope.jsonl" in err.message
    assert (err.where.file, err.where.key) == ("ARGS", "datasets.0.path")  # the override set it: ARGS is named


def bad_dataset(tmp_path, lines: list[str]) -> str:
    data = tmp_path / "bad.jsonl"
    data.write_text("\n".join(lines) + "\n")
    return str(data)


GOOD = json.dumps({"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello."}]})


def test_dataset_line_that_is_not_json(tmp_path):
    data = bad_dataset(tmp_path, [GOOD, GOOD.replace("Hi", "Hey"), '{"messages": [oops'])
    [err] = errors("smollm2-135m-cpu", f"--datasets.0.path={data}")
    assert f"{data}:3: not valid JSON" in err.message


def test_conversation_without_assistant_turn(tmp_path):
    no_reply = json.dumps({"messages": [{"role": "system", "content": "S"}, {"role": "user", "content": "Hi"}]})
    data = bad_dataset(tmp_path, [GOOD, no_reply])
    [err] = errors("smollm2-135m-cpu", f"--datasets.0.path={data}")
    assert f"{data}:2: conversation has no assistant turn" in err.message


def test_bad_data_on_the_cli_exits_nonzero_naming_the_line(tmp_path):
    data = bad_dataset(tmp_path, [GOOD, json.dumps({"messages": [{"role": "user", "content": 3}]})])
    proc = run_cli("launch.preflight", "smollm2-135m-cpu", env={"ARGS": f"--datasets.0.path={data}"})
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert f"{data}:2: messages[0] (user) content is int, not a string" in proc.stdout
    assert "Traceback" not in proc.stdout + proc.stderr


def test_lora_target_the_architecture_lacks():
    [err] = errors("qwen25-3b-instruct-brie", "--lora_target_modules=[q_proj,qkv_proj]")
    assert "Qwen2ForCausalLM has no module named qkv_proj" in err.message
    assert err.where.key == "lora_target_modules"


def test_lora_on_the_vision_tower_is_refused():
    [err] = errors("gemma3-27b", "--lora_target_modules=[q_proj,v_proj]")
    assert "vision tower" in err.message and "language_model" in err.hint


def test_end_of_turn_that_is_never_trained():
    # Llama 3 base: eos <|end_of_text|>, but the llama3 template ends a turn with <|eot_id|>
    assert not errors("llama32-3b-instruct-brie", "--base_model=meta-llama/Meta-Llama-3-8B")
    [err] = errors("llama32-3b-instruct-brie", "--base_model=meta-llama/Meta-Llama-3-8B --eot_tokens=null")
    assert err.check == "end of turn" and "<|eot_id|>" in err.message and "<|end_of_text|>" in err.message


def test_bad_meta_names_the_key(tmp_path):
    # the family is open (any transformers model_type); a parameter count must still be positive
    path = write_recipe(tmp_path / "meta.yaml", "meta:\n  params_b: -3\n")
    with pytest.raises(UserError) as exc:
        load_recipe(str(path))
    assert exc.value.where.key == "meta.params_b" and exc.value.where.line == 3


def test_invalid_yaml_names_the_line(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("base_model: x\nlora_r: [1, 2\nlora_alpha: 3\n")
    with pytest.raises(UserError) as exc:
        load_recipe(str(path))
    assert "not valid YAML" in exc.value.message and exc.value.where.line in (2, 3)
