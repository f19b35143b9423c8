"""What lets a CLI refuse bad input before it imports torch, transformers, axolotl or llama.cpp, checked against the
heavy thing it stands in for: axolotl's schema key names read in a child process and cached per version, the
module tree cached per config.json and transformers version, llama.cpp's quant table read from its source,
axolotl's dataset types found as files, CUDA asked of torch only where a GPU driver exists, the preflight that
stops at its cheap errors, and the findings through axolotl kept per input (and only per the same input)."""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path

import pytest

from core import settings
from core.paths import REPO
from launch.preflight import checks, schema_keys
from resolver import architecture, profiles
from tests.conftest import write_recipe

TINY_LLAMA = {
    "architectures": ["LlamaForCausalLM"],
    "model_type": "llama",
    "hidden_size": 64,
    "intermediate_size": 128,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "vocab_size": 1000,
}


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    """An empty cache folder, but for the materialized local models (the embedded recipe's model is one)."""
    folder = tmp_path / "cache"
    (settings.load().cache / "models").mkdir(parents=True, exist_ok=True)
    folder.mkdir()
    (folder / "models").symlink_to(settings.load().cache / "models")
    monkeypatch.setenv("AFFINAGE_CACHE", str(folder))
    return folder


def test_the_cached_schema_keys_are_axolotls(cache):
    keys = schema_keys.schema_keys([], settings.load().cache)  # read in a child process, then kept
    [kept] = (cache / "axolotl-schema").glob("axolotl-*.json")
    _, input_cls = schema_keys.config_classes({})
    assert keys.config == schema_keys.field_names(input_cls) and "lora_dropout" in keys.config
    for rl, kind in ((None, "sft"), ("dpo", "dpo"), ("simpo", "dpo"), ("kto", "kto"), ("orpo", "sft")):
        assert keys.dataset(rl) == schema_keys.field_names(schema_keys.dataset_class(rl)), (rl, kind)
    assert (
        schema_keys.schema_keys([], settings.load().cache) == keys
        and sorted(keys.config) == json.loads(kept.read_text())["config"]
    )


def test_keys_with_a_plugin_axolotl_cannot_load_are_never_kept(cache):
    # axolotl 0.21 registers a plugin the config names as required: one it cannot import stops the read
    with pytest.raises(schema_keys.PluginsUnavailable, match="axolotl.integrations.nope"):
        schema_keys.schema_keys(["axolotl.integrations.nope.NopePlugin"], settings.load().cache)
    assert not list((cache / "axolotl-schema").glob("*.json"))


def test_the_module_tree_is_kept_per_config_and_read_back_the_same(cache, tmp_path):
    model = tmp_path / "tiny"
    model.mkdir()
    (model / "config.json").write_text(json.dumps(TINY_LLAMA))
    architecture.tree.cache_clear()
    built = architecture.tree(str(model), cache=cache)
    [kept] = (cache / "trees").glob("*.json")
    architecture.tree.cache_clear()
    assert (
        architecture.tree(str(model), cache=cache) == built
        and built.params > 0
        and built.block_class == "LlamaDecoderLayer"
    )
    (model / "config.json").write_text(json.dumps({**TINY_LLAMA, "num_hidden_layers": 3}))
    architecture.tree.cache_clear()
    deeper = architecture.tree(str(model), cache=cache)  # another config.json: another tree, built again
    assert deeper.params > built.params and len(list((cache / "trees").glob("*.json"))) == 2
    architecture.tree.cache_clear()


def test_the_quant_table_is_llama_cpps():
    import llama_cpp

    from tools.export import gguf

    table = {n.removeprefix(gguf.FTYPE): getattr(llama_cpp, n) for n in dir(llama_cpp) if n.startswith(gguf.FTYPE)}
    assert gguf.ftypes() == table and gguf.ftype("q4_k_m") == llama_cpp.LLAMA_FTYPE_MOSTLY_Q4_K_M


@pytest.mark.parametrize("name", ["alpaca", "chat_template.default", "dpo.chatml", "kto.llama3", "alpacca", "nope"])
def test_dataset_types_are_found_as_axolotl_finds_them(name):
    from data.kinds import BUILTIN_HANDLERS, known_type

    module = name.split(".")[0]
    expected = module in BUILTIN_HANDLERS or importlib.util.find_spec(f"axolotl.prompt_strategies.{module}") is not None
    assert known_type(name) == expected


def test_cuda_is_asked_of_torch_only_where_a_driver_exists(monkeypatch, tmp_path):
    import torch

    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    assert profiles.cuda_available(settings.load()) is False
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES")
    monkeypatch.setattr(profiles, "GPU_DEVICE_NODES", (str(tmp_path / "no-such-device"),))
    assert profiles.cuda_available(settings.load()) is False
    (tmp_path / "nvidia0").touch()
    monkeypatch.setattr(profiles, "GPU_DEVICE_NODES", (str(tmp_path / "nvidia0"),))
    assert profiles.cuda_available(settings.load()) == torch.cuda.is_available()


def test_a_cheap_error_stops_the_preflight_before_the_heavy_checks(tmp_path):
    done = checks.preflight(str(write_recipe(tmp_path / "r.yaml", "lora_dropuot: 0.1\n")), settings.load())
    assert done.stopped and any("lora_dropuot" in f.message for f in checks.errors_of(done.findings))
    heavy = {"end of turn", "lora targets", "sequence length", "disk", "kernels"}
    assert not heavy & {f.check for f in done.findings}, [str(f) for f in done.findings]


def test_findings_through_axolotl_are_kept_only_for_the_same_input(cache, tmp_path):
    data = tmp_path / "d.jsonl"
    shutil.copyfile(REPO / "data" / "samples" / "philosophy_chat.train.jsonl", data)
    recipe = str(write_recipe(tmp_path / "r.yaml", f"datasets: [{{path: {data}, type: chat_template}}]\n"))
    first = checks.preflight(recipe, settings.load())
    assert first.reused is None and not checks.errors_of(first.findings), [str(f) for f in first.findings]
    again = checks.preflight(recipe, settings.load())
    assert again.reused is not None and [str(f) for f in again.findings] == [str(f) for f in first.findings]
    assert checks.preflight(recipe, settings.load(), force=True).reused is None  # FORCE=1 runs them again
    long = json.loads(data.read_text().splitlines()[0])
    long["messages"][-1]["content"] = "word " * 400  # a record over sequence_len: the lengths must say so
    data.write_text(data.read_text() + json.dumps(long) + "\n")
    changed = checks.preflight(recipe, settings.load())
    assert changed.reused is None
    assert any(f.check == "sequence length" and f.level == "warning" for f in changed.findings)
