"""`make gguf` refuses an architecture llama.cpp's converter does not know before converting (its own error would
be a traceback after minutes), and lets the ones it registers through."""

from __future__ import annotations

import json

import pytest

from core import settings
from core.errors import UserError
from tools.export.gguf import refuse_unconvertible
from tools.export.gguf_support import converter_architectures


def test_an_unknown_architecture_is_refused_naming_the_config(tmp_path):
    assert "LlamaForCausalLM" in converter_architectures(
        settings.load().cache
    )  # read from the pinned converter's own map
    (tmp_path / "config.json").write_text(json.dumps({"architectures": ["FooBarForCausalLM"]}))
    with pytest.raises(UserError, match="does not support FooBarForCausalLM") as err:
        refuse_unconvertible(tmp_path, settings.load().cache)
    assert err.value.where.key == "architectures" and err.value.where.file == tmp_path / "config.json"
    (tmp_path / "config.json").write_text(json.dumps({"architectures": ["LlamaForCausalLM"]}))
    refuse_unconvertible(tmp_path, settings.load().cache)


def test_the_list_is_the_converters_own_registry_read_once_and_kept(tmp_path):
    """Read by importing llama.cpp's conversion package in a child (its TEXT_MODEL_MAP), kept per converter under
    AFFINAGE_CACHE, and read back from there: a second process asks no child."""
    converter_architectures.cache_clear()
    known = converter_architectures(tmp_path)
    assert {"LlamaForCausalLM", "Qwen2ForCausalLM", "Gemma3ForConditionalGeneration"} <= known
    [kept] = (tmp_path / "llama-converter").glob("architectures-*.json")
    assert sorted(known) == json.loads(kept.read_text())
    kept.write_text(json.dumps(["OnlyThisForCausalLM"]))  # what is kept is what is read
    converter_architectures.cache_clear()
    assert converter_architectures(tmp_path) == {"OnlyThisForCausalLM"}
    converter_architectures.cache_clear()
