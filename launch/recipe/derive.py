"""What a recipe's `meta` does not say, derived from the config and the model's own files, never from a table:

  method       from adapter / load_in_4bit / load_in_8bit (no adapter: a full fine-tune)
  data_format  from the first dataset entry's type (chat_template: messages; a user-defined mapping:
               prompt-completion; alpaca, completion, input_output, ...: that type's name)
  family       the model's config.json model_type (whatever transformers knows)
  params_b     counted on the architecture built on torch's meta device
  description  the base model, the method and the config file

The GPU suggestion is the plan's (launch/preflight/plan.py suggest_gpu); a meta block only overrides all of this.
"""

from __future__ import annotations

from typing import Any

from core.errors import UserError
from launch.recipe import architecture, facts
from launch.recipe.meta import Meta


def method_of(config: dict[str, Any]) -> str:
    adapter = config.get("adapter")
    if adapter == "qlora" or (adapter == "lora" and (config.get("load_in_4bit") or config.get("load_in_8bit"))):
        return "qlora"
    return "lora" if adapter == "lora" else "full"


def data_format_of(config: dict[str, Any]) -> str | None:
    entries = config.get("datasets") or config.get("pretraining_dataset") or []
    entries = entries if isinstance(entries, list) else [entries]
    if not entries or not isinstance(entries[0], dict):
        return None
    kind = entries[0].get("type")
    if isinstance(kind, dict):
        return "prompt-completion"
    if kind in (None, "chat_template"):
        return "messages" if kind else None
    return str(kind).split(":")[0].split(".")[0].replace("_", "-")


def derive(meta: Meta, config: dict[str, Any], base_model: str, source_name: str) -> tuple[Meta, list[str]]:
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
    found = facts.find(base_model)
    if meta.family is None and found is not None:
        values["family"] = found.model_type
        notes.append(f"family {found.model_type} (config.json model_type)")
    if meta.params_b is None and found is not None:
        try:
            values["params_b"] = round(architecture.tree(base_model).params / 1e9, 3)
            notes.append(f"{values['params_b']:g}B parameters (counted on the meta device)")
        except UserError:
            pass  # the preflight reports a model it cannot build
    if meta.description is None:
        method = values.get("method") or meta.method
        values["description"] = f"{base_model} ({method}) from {source_name}"
    return meta.model_copy(update=values), notes
