"""Validators for the dataset types of axolotl's preference strategies (prompt_strategies/dpo, orpo, kto), each
reading a record's fields the way that strategy does, then the shared checks of data/preferences.py (an empty
side, chosen identical to rejected, roles out of order, a side that repeats the prompt)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from data import preferences as prefs
from data.grpo_kinds import grpo_kind
from data.kind import Kind

# the fields each strategy function reads: (prompt field candidates, chosen candidates, rejected candidates)
PAIR_FIELDS = {
    "default": (
        ("prompt", "input", "question", "instruction"),
        ("chosen", "chosen_response"),
        ("rejected", "rejected_response"),
    ),
    "intel": (("question",), ("chosen",), ("rejected",)),
    "icr": (("input",), ("chosen",), ("rejected",)),
    "prompt_pairs": (("prompt",), ("chosen",), ("rejected",)),
    "ultra": (("prompt",), ("chosen",), ("rejected",)),
}
KTO_PROMPT = {"intel": "question", "argilla": "instruction", "prompt_pairs": "prompt", "ultra": "prompt"}


def _first(record: dict, names: tuple[str, ...]) -> Any:
    return next((record[n] for n in names if n in record), None)


def _pairs(fields: tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]], system: str = "system") -> Callable:
    prompt, chosen, rejected = fields

    def check(record: Any) -> str | None:
        if not isinstance(record, dict):
            return "record is not a JSON object"
        for names in fields:
            if _first(record, names) is None:
                return f"no '{names[0]}' field" + (f" (or {', '.join(names[1:])})" if len(names) > 1 else "")
        out = {"prompt": _first(record, prompt), "chosen": _first(record, chosen), "rejected": _first(record, rejected)}
        if record.get(system):
            out["system"] = record[system]
        return prefs.check(out, "pairs")

    return check


def _renamed(mapping: dict[str, str], fmt: str) -> Callable:
    """Read the record's fields under our names, then check it as `fmt`."""

    def check(record: Any) -> str | None:
        if not isinstance(record, dict):
            return "record is not a JSON object"
        missing = [theirs for theirs in mapping.values() if theirs not in record]
        if missing:
            return f"no '{missing[0]}' field"
        return prefs.check({ours: record[theirs] for ours, theirs in mapping.items()}, fmt)

    return check


# axolotl's DPO chat_template strategies: role names when the entry gives no `roles` (it then uses only those)
DPO_ROLES = {"user": ["user"], "assistant": ["assistant"], "system": ["system"], "tool": ["tool"]}


def _messages_reader(ds: dict) -> Callable[[Any], Any]:
    """A side or prompt as axolotl's chat_template.default / argilla_chat read it: each message's role and content
    under the entry's message_property_mappings (or legacy message_field_role/content), its role through `roles`.
    Strings and other shapes pass unchanged (the shared checks name them)."""
    mapping = {
        "role": ds.get("message_field_role") or "role",
        "content": ds.get("message_field_content") or "content",
        **(ds.get("message_property_mappings") or {}),
    }
    roles = {str(src): target for target, srcs in (ds.get("roles") or DPO_ROLES).items() for src in srcs or []}

    def message(m: Any) -> Any:
        if not isinstance(m, dict) or mapping["role"] not in m:
            return m
        role = m[mapping["role"]]
        return {"role": roles.get(str(role), role), "content": m.get(mapping["content"])}

    def read(value: Any) -> Any:
        return [message(m) for m in value] if isinstance(value, list) else message(value)

    return read


def _chat_sides(mapping: dict[str, str], fmt: str, ds: dict) -> Callable:
    """_renamed, with every message read through the entry's mappings and roles first."""
    inner, read = _renamed(mapping, fmt), _messages_reader(ds)

    def check(record: Any) -> str | None:
        if not isinstance(record, dict):
            return "record is not a JSON object"
        names = set(mapping.values())
        return inner({k: read(v) if k in names else v for k, v in record.items()})

    return check


def preference_kind(ds: dict, rl: str):

    kind = ds.get("type")
    if rl == "grpo":  # prompt sets, not pairs
        return grpo_kind(ds)
    if rl == "kto":
        return _kto_kind(ds, kind, Kind)
    if rl == "orpo":
        return _orpo_kind(kind, Kind)
    if isinstance(kind, dict):  # user_defined.default
        f = {k: kind.get(f"field_{k}", k) for k in ("prompt", "chosen", "rejected")}
        return Kind("user-defined", _renamed(f, "pairs"), f"fields {', '.join(f.values())}; shared preference checks")
    name = str(kind or "passthrough")
    if name in ("chat_template.default", "chat_template"):
        f = {
            "messages": ds.get("field_messages") or "messages",
            "chosen": ds.get("field_chosen") or "chosen",
            "rejected": ds.get("field_rejected") or "rejected",
        }
        return Kind(
            name,
            _chat_sides(f, "pairs-messages", ds),
            "prompt turns, chosen and rejected answers (each ending with an assistant turn); shared preference checks",
        )
    if name.endswith("argilla_chat") or name == "chat_template.argilla":
        sides = {"chosen": ds.get("field_chosen") or "chosen", "rejected": ds.get("field_rejected") or "rejected"}
        return Kind(
            name,
            _chat_sides(sides, "pairs-chat", ds),
            "chosen and rejected conversations sharing one prompt; shared preference checks",
        )
    if name == "passthrough":
        return Kind(
            name, _pairs(PAIR_FIELDS["prompt_pairs"]), "prompt, chosen, rejected strings; shared preference checks"
        )
    family, _, func = name.partition(".")
    if family in ("chatml", "llama3") and (func or "default") in PAIR_FIELDS:
        return Kind(name, _pairs(PAIR_FIELDS[func or "default"]), "its fields; shared preference checks")
    if name.startswith(("chatml.", "llama3.", "zephyr.", "chat_template.")):
        return Kind(name, None, "an axolotl preference strategy this repo reads without validating records")
    return Kind(
        name,
        None,
        error=f"type {name} is not one of axolotl's preference (rl: {rl}) dataset types; "
        "for chat data use type: chat_template.default with field_messages, field_chosen, "
        "field_rejected",
    )


def _kto_kind(ds: dict, kind: Any, Kind):
    if isinstance(kind, dict):
        f = {k: kind.get(f"field_{k}", k) for k in ("prompt", "completion", "label")}
        return Kind("user-defined", _renamed(f, "kto"), f"fields {', '.join(f.values())}; label true/false")
    name = str(kind or "")
    func = name.partition(".")[2]
    if not name:
        return Kind(
            "(none)",
            _renamed({"prompt": "prompt", "completion": "completion", "label": "label"}, "kto"),
            "prompt, completion, label; shared checks",
        )
    if name.startswith(("chatml.", "llama3.")) and func == "argilla_chat":
        return Kind(name, _kto_chat, "completion: prompt turns then the answer (an assistant turn); label true/false")
    if name.startswith(("chatml.", "llama3.")) and func in KTO_PROMPT:
        mapping = {"prompt": KTO_PROMPT[func], "completion": "completion", "label": "label"}
        return Kind(name, _renamed(mapping, "kto"), f"fields {', '.join(mapping.values())}; label true/false")
    if name.startswith(("chatml.", "llama3.")):
        return Kind(name, None, "an axolotl KTO strategy this repo reads without validating records")
    return Kind(
        name,
        None,
        error=f"type {name} is not one of axolotl's KTO dataset types (chatml.* / llama3.* / a "
        "user-defined mapping, or none with prompt, completion, label)",
    )


def _kto_chat(record: Any) -> str | None:
    """KTO's argilla_chat: `completion` is the conversation, its last turn the answer (completion[-1])."""
    if not isinstance(record, dict):
        return "record is not a JSON object"
    turns = record.get("completion")
    if not isinstance(turns, list) or len(turns) < 2:
        return "'completion' must be a conversation: the prompt turns, then the answer"
    return prefs.check({"prompt": turns[:-1], "completion": turns, "label": record.get("label")}, "kto")


def _orpo_check(record: Any) -> str | None:
    """ORPO's chat_template.argilla: chosen/rejected alternate user, assistant; the system prompt is a field."""
    if not isinstance(record, dict):
        return "record is not a JSON object"
    roles = {}
    for side in ("chosen", "rejected"):
        turns = record.get(side)
        if not isinstance(turns, list):
            return f"'{side}' must be a list of user/assistant turns"
        roles[side] = [t.get("role") if isinstance(t, dict) else None for t in turns]
        if "system" in roles[side]:
            return f"'{side}' holds a system turn; put a system prompt in a 'system' field (ORPO reads it there)"
    shared = prefs.check(record, "pairs-chat")  # each side ends with the assistant's answer, one prompt, ...
    if shared:
        return shared
    for side, found in roles.items():
        if len(found) < 2 or found != ["user", "assistant"] * (len(found) // 2) or len(found) % 2:
            return f"'{side}' roles are {' -> '.join(map(str, found)) or 'none'}, not user/assistant alternating"
    return None


def _orpo_kind(kind: Any, Kind):
    name = kind if isinstance(kind, str) else "user-defined"
    if name in ("chat_template.argilla", "argilla"):
        return Kind(name, _orpo_check, "chosen and rejected user/assistant conversations; shared preference checks")
    return Kind(
        name,
        None,
        error=f"type {name} is not an ORPO dataset type: axolotl's ORPO reads "
        "type: chat_template.argilla (chosen/rejected conversations, optional system)",
    )
