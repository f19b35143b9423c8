"""What a recipe's `meta` does not say, derived from the config and the model's own files, never from a table:

  method       from adapter / load_in_4bit / load_in_8bit: lora, lora-8bit (LoRA on an 8-bit base), qlora (4-bit),
               full (no adapter)
  data_format  from the first dataset entry's type (chat_template: messages; a user-defined mapping:
               prompt-completion; alpaca, completion, input_output, ...: that type's name); for preference
               tuning (rl:) the preference format: pairs-messages, pairs-chat, pairs or kto
  family       the model's config.json model_type (whatever transformers knows)
  params_b     counted on the architecture built on torch's meta device
  description  the base model, the method and the config file

The GPU suggestion is the plan's (launch/preflight/plan.py suggest_gpu). A meta block documents and overrides; a
meta value that contradicts what is derived (contradictions()) is an error of `make check`: family against
config.json's model_type, params_b beyond PARAMS_TOLERANCE of the counted parameters, method and data_format
against the config.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from core.errors import UserError
from resolver import architecture, facts
from resolver.meta import Meta

PAIRED_RL = ("dpo", "ipo", "simpo", "orpo")
PARAMS_TOLERANCE = 0.25  # meta.params_b further than this share from the counted parameters is a contradiction


def method_of(config: dict[str, Any]) -> str:
    adapter = config.get("adapter")
    if adapter == "qlora" or (adapter == "lora" and config.get("load_in_4bit")):
        return "qlora"
    if adapter == "lora" and config.get("load_in_8bit"):
        return "lora-8bit"
    return "lora" if adapter == "lora" else "full"


def _preference_format(kind: Any, rl: str) -> str | None:
    """The preference format (data/preferences.py) an rl: dataset type reads, or None for one we do not name."""
    if rl == "kto":
        return "kto"
    if isinstance(kind, dict):
        return "pairs"
    name = str(kind or "passthrough")
    if name in ("chat_template", "chat_template.default"):
        return "pairs-messages"
    if name.endswith((".argilla_chat", ".argilla")):
        return "pairs-chat"
    if name == "passthrough" or name.startswith(("chatml", "llama3")):
        return "pairs"
    return None


def data_format_of(config: dict[str, Any]) -> str | None:
    entries = config.get("datasets") or config.get("pretraining_dataset") or []
    entries = entries if isinstance(entries, list) else [entries]
    if not entries or not isinstance(entries[0], dict):
        return None
    kind = entries[0].get("type")
    if config.get("rl") == "grpo":  # a prompt set (data/grpo_kinds.py)
        return "prompts"
    if config.get("rl") in (*PAIRED_RL, "kto"):
        return _preference_format(kind, config["rl"])
    if isinstance(kind, dict):
        return "prompt-completion"
    if kind in (None, "chat_template"):
        return "messages" if kind else None
    return str(kind).split(":")[0].split(".")[0].replace("_", "-")


def counted_params_b(base_model: str, cache: Path) -> float | None:
    """Parameters in billions, counted on the meta device; None when the model cannot be built here."""
    try:
        return round(architecture.tree(base_model, cache=cache).params / 1e9, 3)
    except UserError:
        return None  # the preflight reports a model it cannot build


def contradictions(
    meta: Meta, config: dict[str, Any], base_model: str, cache: Path, counted: bool = True
) -> list[tuple[str, Any, Any, str]]:
    """(meta key, what meta says, what is derived, where it is derived from) for every meta value that contradicts
    the config (as the recipe writes it, before a device profile) or the model's own files; counted=False leaves
    out params_b (counting builds the module tree)."""
    out: list[tuple[str, Any, Any, str]] = []
    if meta.method is not None and meta.method != (method := method_of(config)):
        out.append(("meta.method", meta.method, method, "the adapter / load_in_* keys"))
    fmt = data_format_of(config)
    if meta.data_format is not None and fmt is not None and meta.data_format != fmt:
        out.append(("meta.data_format", meta.data_format, fmt, "the first dataset's type"))
    found = facts.find(base_model, cache=cache)
    if found is None:
        return out  # nothing known about the model here: the preflight says so
    if meta.family is not None and meta.family.lower() != found.model_type.lower():
        out.append(("meta.family", meta.family, found.model_type, "config.json model_type"))
    counted = counted_params_b(base_model, cache) if counted and meta.params_b is not None else None
    if counted and abs(meta.params_b - counted) > PARAMS_TOLERANCE * counted:
        apart = f"counted on the meta device; more than {PARAMS_TOLERANCE:.0%} apart"
        out.append(("meta.params_b", meta.params_b, counted, apart))
    return out


def derive(
    meta: Meta, config: dict[str, Any], base_model: str, source_name: str, cache: Path
) -> tuple[Meta, list[str]]:
    """(meta with every derivable field filled, one note per derived field). Facts that are not available
    offline stay None; the preflight reports them."""
    values: dict[str, Any] = {}
    notes: list[str] = []
    if meta.method is None:
        values["method"] = method_of(config)
        notes.append(f"method {values['method']} (from adapter / load_in_* keys)")
    if meta.data_format is None and (fmt := data_format_of(config)):
        values["data_format"] = fmt
        notes.append(f"data format {fmt} (from the dataset type)")
    found = facts.find(base_model, cache=cache)
    if meta.family is None and found is not None:
        values["family"] = found.model_type
        notes.append(f"family {found.model_type} (config.json model_type)")
    if meta.params_b is None and found is not None and (counted := counted_params_b(base_model, cache)):
        values["params_b"] = counted
        notes.append(f"{counted:g}B parameters (counted on the meta device)")
    if meta.description is None:
        method = values.get("method") or meta.method
        values["description"] = f"{base_model} ({method}) from {source_name}"
    return meta.model_copy(update=values), notes
