"""One validator per axolotl SFT dataset type, reading a record the way that type's prompt strategy will (the
dataset entry's own field names and mappings): chat_template (field_messages, message_property_mappings or the
legacy message_field_role/content, roles), the alpaca family, completion, input_output, pretraining text, a
user-defined mapping, and the named strategies that only need fields. A type we cannot validate gets a kind that
says so, and the caller warns which checks did not run; a type for preference tuning or one axolotl refuses is an
error."""

from __future__ import annotations

import difflib
import json
from collections.abc import Callable
from typing import Any

from data.kind import Kind
from data.preference_kinds import preference_kind
from data.validate import check_messages

# axolotl's chat_template default role map (source -> target)
DEFAULT_ROLES = {
    "human": "user",
    "user": "user",
    "gpt": "assistant",
    "assistant": "assistant",
    "model": "assistant",
    "system": "system",
    "tool": "tool",
}
# named strategies that read fixed fields: (required, optional); axolotl's prompt_strategies
FIELDS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "alpaca": (("instruction", "output"), ("input",)),
    "alpaca_chat": (("instruction", "output"), ("input",)),
    "alpaca_instruct": (("instruction", "output"), ("input",)),
    "alpaca_w_system": (("instruction", "output", "system"), ("input",)),
    "alpaca_chat.load_qa": (("question", "answer"), ()),
    "alpaca_chat.load_camel_ai": (("message_1", "message_2"), ()),
    "gpteacher": (("instruction", "response"), ("input",)),
    "oasst": (("INSTRUCTION", "RESPONSE"), ()),
    "metharme": (("prompt", "generation"), ()),
    "jeopardy": (("question", "category", "answer"), ()),
    "summarizetldr": (("article", "summary"), ()),
    "context_qa": (("article", "question", "answer"), ()),
    "context_qa.load_v2": (("context", "question", "answer"), ()),
    "explainchoice": (("question", "choices", "solution"), ()),
    "concisechoice": (("question", "choices", "solution"), ()),
    "reflection": (("instruction", "output", "reflection", "corrected"), ("input",)),
}
# axolotl's DATASET_HANDLERS (utils/data/wrappers.py): names handled without a prompt_strategies module
BUILTIN_HANDLERS = (
    "alpaca",
    "explainchoice",
    "concisechoice",
    "summarizetldr",
    "jeopardy",
    "oasst",
    "gpteacher",
    "reflection",
)
RL_PREFIXES = (
    "chatml.",
    "llama3.",
    "chat_template.default",
    "chat_template.argilla",
    "zephyr.",
    "passthrough",
    "user_defined.",
    "bradley_terry.",
    "stepwise_supervised",
)


def _messages(ds: dict) -> Callable[[Any], str | None]:
    field = ds.get("field_messages") or "messages"
    mapping = dict(ds.get("message_property_mappings") or {})
    mapping.setdefault("role", ds.get("message_field_role") or "role")
    mapping.setdefault("content", ds.get("message_field_content") or "content")
    roles = dict(DEFAULT_ROLES)
    for target, sources in (ds.get("roles") or {}).items():
        for src in sources if isinstance(sources, list) else [sources]:
            roles[str(src)] = str(target)

    def check(record: Any) -> str | None:
        if not isinstance(record, dict):
            return "record is not a JSON object"
        turns = record.get(field)
        if isinstance(turns, str):
            try:
                turns = json.loads(turns)
            except json.JSONDecodeError:
                return f"'{field}' is a string that is not a JSON list of messages"
        if turns is None:
            return f"no '{field}' field"
        if not isinstance(turns, list) or not turns:
            return f"'{field}' must be a non-empty list"
        normal = []
        for i, turn in enumerate(turns):
            if not isinstance(turn, dict):
                return f"{field}[{i}] is not an object"
            for prop in ("role", "content"):
                if mapping[prop] not in turn:
                    return f"{field}[{i}] has no '{mapping[prop]}' (the {prop} field, message_property_mappings)"
            role = turn[mapping["role"]]
            normal.append({"role": roles.get(str(role), role), "content": turn[mapping["content"]]})
        if record.get("system") and normal[0]["role"] != "system":
            normal.insert(0, {"role": "system", "content": record["system"]})
        return check_messages({"messages": normal})

    return check


def _fields(required: tuple[str, ...], optional: tuple[str, ...], trained: str | None) -> Callable[[Any], str | None]:
    def check(record: Any) -> str | None:
        if not isinstance(record, dict):
            return "record is not a JSON object"
        for key in required:
            if key not in record or record[key] is None:
                return f"no '{key}' field"
        for key in (*required, *optional):
            if key in record and record[key] is not None and not isinstance(record[key], (str, list)):
                return f"'{key}' is {type(record[key]).__name__}, not a string"
        if trained and not str(record.get(trained) or "").strip():
            return f"empty '{trained}' (nothing to train on)"
        return None

    return check


def _segments(record: Any) -> str | None:
    if not isinstance(record, dict):
        return "record is not a JSON object"
    segments = record.get("segments")
    if not isinstance(segments, list) or not segments:
        return "no 'segments' list (input_output wants segments: [{label: bool, text: str}, ...])"
    for i, seg in enumerate(segments):
        if not isinstance(seg, dict) or not isinstance(seg.get("text"), str) or not isinstance(seg.get("label"), bool):
            return f"segments[{i}] needs a string 'text' and a boolean 'label'"
    if not any(seg["label"] for seg in segments):
        return "no segment has label: true (nothing to train on)"
    return None


def kind_of(ds: dict, rl: str | bool | None = None) -> Kind:
    """How records of this dataset entry are read and checked; `rl` is the config's rl: value (dpo, ipo, simpo,
    orpo, kto), whose dataset types are preference formats (data/preference_kinds.py)."""
    if rl:
        return preference_kind(ds, str(rl))
    kind = ds.get("type")
    if isinstance(kind, dict):
        instruction = kind.get("field_instruction", "instruction")
        output = kind.get("field_output", "output")
        optional = tuple(k for k in (kind.get("field_input", "input"), kind.get("field_system", "system")) if k)
        return Kind(
            "user-defined",
            _fields((instruction, output), optional, output),
            f"fields {instruction} and {output} present and strings, {output} not empty",
        )
    name = str(kind or "")
    if name.startswith("sharegpt"):
        return Kind(
            name,
            None,
            error="axolotl refuses type: sharegpt (since 0.19); use type: chat_template with "
            "field_messages: conversations and message_property_mappings {role: from, content: value}",
        )
    if not rl and name.startswith(RL_PREFIXES):
        return Kind(name, None, error=f"type {name} is a preference-tuning (rl:) format, not an SFT one")
    if name == "chat_template":
        return Kind(
            name,
            _messages(ds),
            "messages: mapped roles known, system first, user/assistant alternating, an assistant turn, string content",
        )
    if name in ("completion", "pretrain"):
        field = ds.get("field") or ds.get("text_column") or "text"
        return Kind(name, _fields((field,), (), field), f"field {field} present and not empty")
    if name == "input_output":
        return Kind(name, _segments, "segments with boolean labels, at least one trained")
    base = name.split(":")[0]
    if base in FIELDS:
        required, optional = FIELDS[base]
        return Kind(name, _fields(required, optional, required[-1]), f"fields {', '.join(required)} present")
    if name and not known_type(name):
        names = [*FIELDS, *BUILTIN_HANDLERS, "chat_template", "completion", "input_output", "pretrain"]
        close = difflib.get_close_matches(base, list(dict.fromkeys(names)), n=2)
        hint = f" (did you mean {', '.join(close)}?)" if close else ""
        return Kind(name, None, error=f"axolotl has no dataset type '{name}'{hint}")
    return Kind(
        name or "(none)",
        None,
        "axolotl reads it through its own prompt strategy; records are not validated "
        "offline, only that the file or dataset is readable",
    )


def known_type(name: str) -> bool:
    """Whether axolotl has a prompt strategy of this name: a prompt_strategies module (`mod` or `mod.load_x`), or
    one of its built-in handlers (alpaca, jeopardy, ...)."""
    import importlib.util
    from pathlib import Path

    module = name.split(":")[0].split(".")[0]
    if module in BUILTIN_HANDLERS:
        return True
    # looked up as files: finding the submodule's spec would import axolotl.prompt_strategies (torch, transformers)
    spec = importlib.util.find_spec("axolotl")
    roots = [Path(p) / "prompt_strategies" for p in (spec.submodule_search_locations or [])] if spec else []
    return bool(module) and any((d / f"{module}.py").is_file() or (d / module / "__init__.py").is_file() for d in roots)
