"""`make gguf` refuses an architecture llama.cpp's converter does not know before converting (its own error would
be a traceback after minutes), and lets the ones it registers through."""

from __future__ import annotations

import json

import pytest

from core.errors import UserError
from tools.export.gguf import refuse_unconvertible
from tools.export.gguf_support import converter_architectures


def test_an_unknown_architecture_is_refused_naming_the_config(tmp_path):
    assert "LlamaForCausalLM" in converter_architectures()  # read from the pinned converter's own map
    (tmp_path / "config.json").write_text(json.dumps({"architectures": ["FooBarForCausalLM"]}))
    with pytest.raises(UserError, match="does not support FooBarForCausalLM") as err:
        refuse_unconvertible(tmp_path)
    assert err.value.where.key == "architectures" and err.value.where.file == tmp_path / "config.json"
    (tmp_path / "config.json").write_text(json.dumps({"architectures": ["LlamaForCausalLM"]}))
    refuse_unconvertible(tmp_path)
