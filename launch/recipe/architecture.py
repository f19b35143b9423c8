"""What a base model looks like, without its weights or the network.

The architecture is built on torch's meta device from config.json (a local model folder) or from the
offline facts table launch/hub_models.yaml, so LoRA targets and parameter counts are checked against
the real transformers class.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from core.errors import UserError

HUB_FACTS = Path(__file__).with_name("hub_models.yaml")
VISION_MARKERS = ("vision_tower", "vision_model", "multi_modal_projector", "visual")


@lru_cache(maxsize=1)
def hub_facts() -> dict[str, Any]:
    return yaml.safe_load(HUB_FACTS.read_text())


def facts_for(base_model: str) -> dict[str, Any] | None:
    """Facts for a hub id, or read from a local folder's config.json."""
    local = Path(base_model)
    if (local / "config.json").is_file():
        config = json.loads((local / "config.json").read_text())
        arch = (config.get("architectures") or ["AutoModelForCausalLM"])[0]
        return {"architecture": arch, "config": config, "local": True}
    return hub_facts().get(base_model)


@dataclass
class Linear:
    name: str
    in_features: int
    out_features: int


@lru_cache(maxsize=32)
def _linears(base_model: str) -> tuple[str, int, tuple[Linear, ...], str | None]:
    import torch
    import transformers
    from transformers import AutoConfig

    facts = facts_for(base_model)
    if facts is None:
        raise UserError(
            f"no offline facts for base model '{base_model}'",
            hint=f"add it to {HUB_FACTS.name} (numbers from its config.json) or use a local folder",
        )
    raw = dict(facts["config"])
    model_type = raw.pop("model_type")
    config = AutoConfig.for_model(model_type, **raw)
    cls = getattr(transformers, facts["architecture"], None)
    if cls is None:
        raise UserError(f"transformers has no class {facts['architecture']}")
    with torch.device("meta"):
        model = cls._from_config(config)
    params = sum(p.numel() for p in model.parameters())
    linears = tuple(
        Linear(n, m.in_features, m.out_features) for n, m in model.named_modules() if isinstance(m, torch.nn.Linear)
    )
    blocks = [type(m).__name__ for m in model.modules() if type(m).__name__.endswith("DecoderLayer")]
    return facts["architecture"], params, linears, blocks[0] if blocks else None


def architecture(base_model: str) -> tuple[str, int, list[Linear]]:
    """(class name, parameter count, every nn.Linear with its shape)."""
    arch, params, linears, _ = _linears(base_model)
    return arch, params, list(linears)


def block_class(base_model: str) -> str:
    """The repeated transformer block's class name (what FSDP wraps), e.g. LlamaDecoderLayer."""
    block = _linears(base_model)[3]
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


def lora_targets(base_model: str, target: str | list[str]) -> list[Linear]:
    _, _, linears = architecture(base_model)
    return [lin for lin in linears if matches(target, lin.name)]


def missing_targets(base_model: str, target: list[str]) -> list[str]:
    """List entries that match no Linear module at all."""
    _, _, linears = architecture(base_model)
    return [t for t in target if not any(matches([t], lin.name) for lin in linears)]


def is_vision(name: str) -> bool:
    return any(marker in name for marker in VISION_MARKERS)


def lora_param_count(base_model: str, target: str | list[str], rank: int) -> int:
    return sum(rank * (lin.in_features + lin.out_features) for lin in lora_targets(base_model, target))


def offline_model_config(base_model: str) -> str | None:
    """A folder with config.json for a hub model, written from the facts table (axolotl's tokenizer loader
    reads the model config too, which would otherwise need the hub). None for a local model."""
    from transformers import AutoConfig

    from core.paths import cache_dir

    facts = facts_for(base_model)
    if facts is None or facts.get("local"):
        return None
    folder = cache_dir() / "configs" / base_model.replace("/", "--")
    if not (folder / "config.json").is_file():
        raw = dict(facts["config"])
        config = AutoConfig.for_model(raw.pop("model_type"), **raw)
        config.architectures = [facts["architecture"]]
        config.save_pretrained(folder)
    return str(folder)


def tokenizer_config(config: dict[str, Any], tokenizer_dir: str) -> dict[str, Any]:
    """`config` set up for axolotl's tokenizer loader offline: the local tokenizer folder, and for a hub model a
    local config.json folder."""
    out = {**config, "tokenizer_config": config.get("tokenizer_config") or tokenizer_dir}
    if not Path(config["base_model"]).is_dir() and not config.get("base_model_config"):
        out["base_model_config"] = offline_model_config(config["base_model"])
    return out
