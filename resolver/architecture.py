"""What a base model looks like, without its weights: its transformers class built on torch's meta device from its
config.json (resolver/facts.py), read as a module tree. From the tree, never from a table per family: every
Linear with its shape (LoRA targets), the parameter count, the repeated decoder block class (what FSDP wraps), the
language model's prefix and the towers beside it (a vision or audio encoder and its projector: what text-only LoRA
must not touch), and the text sizes the estimator needs.
"""

from __future__ import annotations

import hashlib
import importlib.metadata as md
import json
import re
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from core import atomic
from core.errors import UserError, Where
from resolver import facts as model_facts

HUB_FACTS = model_facts.SHIPPED
LM_HEADS = ("lm_head", "embed_out", "output")


@dataclass(frozen=True)
class Linear:
    name: str
    in_features: int
    out_features: int


@dataclass(frozen=True)
class Tree:
    architecture: str
    params: int
    linears: tuple[Linear, ...]
    block_class: str | None  # the decoder layer class
    language_prefix: str  # dotted path of the text decoder ("model", "model.language_model", ...)
    towers: tuple[str, ...]  # dotted paths of modules beside the language model (vision/audio encoders, projectors)
    text: dict[str, Any]  # hidden_size, intermediate_size, num_hidden_layers, num_attention_heads, vocab_size


def facts_for(base_model: str, *, cache: Path) -> dict[str, Any] | None:
    """The facts available offline as a plain dict (architecture, config, local, eos_token, license), or None."""
    f = model_facts.find(base_model, cache=cache)
    if f is None:
        return None
    return {
        "architecture": f.architecture,
        "config": f.config,
        "local": f.source == "local",
        "eos_token": f.eos_token,
        "license": f.license,
        "source": f.source,
        "folder": str(f.folder) if f.folder else None,
    }


def _config(f: model_facts.ModelFacts):
    from transformers import AutoConfig

    if f.folder is not None:
        return AutoConfig.from_pretrained(f.folder)
    raw = dict(f.config)
    raw.pop("architectures", None)
    return AutoConfig.for_model(raw.pop("model_type"), **raw)


def _model_class(arch: str):
    import transformers

    cls = getattr(transformers, arch, None)
    if cls is None:
        raise UserError(
            f"transformers {transformers.__version__} has no model class {arch}",
            hint="the config's `architectures` names a class of a newer transformers, or of trust_remote_code "
            "code, which this repo does not run",
        )
    return cls


def _decoder_prefix(model, named: dict[int, str]) -> str:
    """The text decoder's dotted path: transformers' get_decoder() where the class has one, else the module that
    holds the longest ModuleList of identical blocks."""
    import torch

    try:
        decoder = model.get_decoder()
        if decoder is not None and id(decoder) in named:
            return named[id(decoder)]
    except (AttributeError, NotImplementedError):
        pass
    lists = [(len(m), n) for n, m in model.named_modules() if isinstance(m, torch.nn.ModuleList) and len(m)]
    if not lists:
        return ""
    _, name = max(lists)
    return name.rsplit(".", 1)[0] if "." in name else ""


@lru_cache(maxsize=32)
def tree(base_model: str, *, cache: Path) -> Tree:
    """The module tree, kept in the cache folder per config.json and transformers version: building it imports
    torch and transformers (seconds), reading it back does not."""
    f = model_facts.find(base_model, cache=cache)
    if f is None:
        raise UserError(
            f"no facts for base model '{base_model}' here (not a local folder, not in the HF cache)",
            hint=model_facts.fetch_hint(base_model),
        )
    path = _tree_file(f, cache)
    if path.is_file():
        try:
            return _tree_from(json.loads(path.read_text(encoding="utf-8")))
        except (OSError, ValueError, KeyError, TypeError):
            pass  # a damaged cache file: built again
    built = _build(f)
    atomic.write_json(path, asdict(built))
    return built


def _tree_file(f: model_facts.ModelFacts, cache: Path) -> Path:
    key = json.dumps([f.architecture, f.config, md.version("transformers")], sort_keys=True, default=str)
    return cache / "trees" / f"{hashlib.sha256(key.encode()).hexdigest()[:24]}.json"


def _tree_from(data: dict[str, Any]) -> Tree:
    linears = tuple(Linear(**lin) for lin in data["linears"])
    return Tree(**{**data, "linears": linears, "towers": tuple(data["towers"])})


def _build(f: model_facts.ModelFacts) -> Tree:
    import torch

    config = _config(f)
    try:
        cls = _model_class(f.architecture)
    except UserError as exc:
        raise UserError(
            exc.message, Where(f.folder / "config.json" if f.folder else HUB_FACTS, key="architectures"), exc.hint
        ) from None
    try:
        with torch.device("meta"):
            model = cls._from_config(config)
    except Exception as exc:  # noqa: BLE001 - whatever the class raises on a config it cannot take
        where = f.folder / "config.json" if f.folder else HUB_FACTS
        raise UserError(
            f"transformers cannot build {f.architecture} from this config: {type(exc).__name__}: {exc}",
            Where(where),
            "the config.json is inconsistent (or for another transformers version)",
        ) from None
    named = {id(m): n for n, m in model.named_modules()}
    prefix = _decoder_prefix(model, named)
    decoder = model.get_submodule(prefix) if prefix else model
    blocks = [m for m in decoder.modules() if isinstance(m, torch.nn.ModuleList) and len(m)]
    block = type(max(blocks, key=len)[0]).__name__ if blocks else None
    ancestors = {".".join(prefix.split(".")[:i]) for i in range(1, len(prefix.split(".")) + 1)} if prefix else set()
    parent = prefix.rsplit(".", 1)[0] if "." in prefix else ""
    siblings = [n for n, _ in (model.get_submodule(parent) if parent else model).named_children()]
    towers = (
        ()
        if not prefix
        else tuple(
            f"{parent}.{n}" if parent else n
            for n in siblings
            if (f"{parent}.{n}" if parent else n) not in ancestors
            and n not in LM_HEADS
            and not _is_embedding(model.get_submodule(f"{parent}.{n}" if parent else n))
        )
    )
    linears = tuple(
        Linear(n, m.in_features, m.out_features) for n, m in model.named_modules() if isinstance(m, torch.nn.Linear)
    )
    text_config = config.get_text_config() if hasattr(config, "get_text_config") else config
    hidden = getattr(text_config, "hidden_size", 0)
    text = {
        "hidden_size": hidden,
        "num_hidden_layers": getattr(text_config, "num_hidden_layers", 0),
        "num_attention_heads": getattr(text_config, "num_attention_heads", 0),
        "vocab_size": getattr(text_config, "vocab_size", 0),
        "intermediate_size": getattr(text_config, "intermediate_size", None) or 4 * hidden,
    }
    return Tree(f.architecture, sum(p.numel() for p in model.parameters()), linears, block, prefix, towers, text)


def _is_embedding(module) -> bool:
    import torch

    return isinstance(module, torch.nn.Embedding)


def architecture(base_model: str, *, cache: Path) -> tuple[str, int, list[Linear]]:
    """(class name, parameter count, every nn.Linear with its shape)."""
    t = tree(base_model, cache=cache)
    return t.architecture, t.params, list(t.linears)


def block_class(base_model: str, *, cache: Path) -> str:
    """The repeated transformer block's class name (what FSDP wraps), e.g. LlamaDecoderLayer."""
    block = tree(base_model, cache=cache).block_class
    if block is None:
        raise UserError(
            f"cannot find the decoder layer class of {base_model}", hint="FSDP needs it; use a ZeRO strategy"
        )
    return block


def matches(target: str | list[str], name: str) -> bool:
    """peft's rule: a string is a full regex match; a list matches a name or a name's last part."""
    if isinstance(target, str):
        return re.fullmatch(target, name) is not None
    return any(name == t or name.endswith("." + t) for t in target)


def lora_targets(base_model: str, target: str | list[str], *, cache: Path) -> list[Linear]:
    return [lin for lin in tree(base_model, cache=cache).linears if matches(target, lin.name)]


def missing_targets(base_model: str, target: list[str], *, cache: Path) -> list[str]:
    """List entries that match no Linear module at all."""
    linears = tree(base_model, cache=cache).linears
    return [t for t in target if not any(matches([t], lin.name) for lin in linears)]


def in_tower(base_model: str, name: str, *, cache: Path) -> bool:
    """Whether a module lives in a vision/audio tower or projector beside the language model."""
    return any(name == t or name.startswith(t + ".") for t in tree(base_model, cache=cache).towers)


def language_linear_names(base_model: str, *, cache: Path) -> list[str]:
    """The distinct last names of the language model's Linear layers, lm_head excluded: LoRA on all of them is
    axolotl's lora_target_linear, limited to the text model."""
    t = tree(base_model, cache=cache)
    inside = [
        lin.name
        for lin in t.linears
        if lin.name.split(".")[-1] not in LM_HEADS and not in_tower(base_model, lin.name, cache=cache)
    ]
    return sorted(
        {n.split(".")[-1] for n in inside}, key=lambda n: next(i for i, x in enumerate(inside) if x.endswith(n))
    )


def lora_param_count(base_model: str, target: str | list[str], rank: int, *, cache: Path) -> int:
    return sum(rank * (lin.in_features + lin.out_features) for lin in lora_targets(base_model, target, cache=cache))


def offline_model_config(base_model: str, *, cache: Path) -> str | None:
    """A folder with config.json for a hub model known only from a facts table (axolotl's tokenizer loader reads
    the model config too, which would otherwise need the hub). None when the model has a folder of its own."""
    f = model_facts.find(base_model, cache=cache)
    if f is None or f.folder is not None:
        return str(f.folder) if f is not None and f.folder else None
    folder = cache / "configs" / base_model.replace("/", "--")
    if not (folder / "config.json").is_file():
        config = _config(f)
        config.architectures = [f.architecture]
        config.save_pretrained(folder)
    return str(folder)


def tokenizer_config(config: dict[str, Any], tokenizer_dir: str, *, cache: Path) -> dict[str, Any]:
    """`config` set up for axolotl's tokenizer loader offline: the local tokenizer folder, and for a hub model a
    local config.json folder."""
    out = {**config, "tokenizer_config": config.get("tokenizer_config") or tokenizer_dir}
    if not Path(config["base_model"]).is_dir() and not config.get("base_model_config"):
        out["base_model_config"] = offline_model_config(config["base_model"], cache=cache)
    return out
