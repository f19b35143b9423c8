"""The held-out documents `make eval` scores: one prompt and its reference answer per record of the config's first
`test_datasets` entry, read as axolotl reads that entry's type, for every SFT type a user config may name:
chat_template (and legacy sharegpt-style) conversations with their field_messages / message_property_mappings /
roles, alpaca-style instruction/input/output, and user-defined field_instruction/field_output formats. The prompt
is the conversation up to the last assistant turn's user message; the reference is that assistant turn."""

from __future__ import annotations

import json
from typing import Any

from core.errors import UserError, Where
from data import sources
from data.entries import dataset_file
from data.kinds import DEFAULT_ROLES

ALPACA_PREFIXES = ("alpaca", "alpaca_chat", "alpaca_w_system")
MESSAGE_PREFIXES = ("chat_template", "sharegpt", "messages")


def _roles(ds: dict[str, Any]) -> dict[str, str]:
    roles = dict(DEFAULT_ROLES)
    for target, names in (ds.get("roles") or {}).items():
        for name in names if isinstance(names, list) else [names]:
            roles[str(name)] = str(target)
    return roles


def _from_messages(ds: dict[str, Any]):
    field = ds.get("field_messages") or ("conversations" if str(ds.get("type")).startswith("sharegpt") else "messages")
    mapping = dict(ds.get("message_property_mappings") or {})
    role_key = mapping.get("role") or ds.get("message_field_role") or None
    content_key = mapping.get("content") or ds.get("message_field_content") or None
    roles = _roles(ds)

    def doc(record: dict[str, Any]) -> dict[str, str] | None:
        turns = record.get(field)
        if isinstance(turns, str):
            turns = json.loads(turns)
        if not isinstance(turns, list):
            return None
        msgs = []
        for t in turns:
            r = t.get(role_key) if role_key else t.get("role", t.get("from"))
            c = t.get(content_key) if content_key else t.get("content", t.get("value"))
            msgs.append({"role": roles.get(str(r), str(r)), "content": c})
        answers = [i for i, m in enumerate(msgs) if m["role"] == "assistant"]
        users = [m for m in msgs[: answers[-1]] if m["role"] == "user"] if answers else []
        if not users:
            return None
        return {"prompt": users[-1]["content"], "reference": msgs[answers[-1]]["content"]}

    return doc


def _from_fields(instruction: str, extra: str | None, output: str, template: str | None = None):
    def doc(record: dict[str, Any]) -> dict[str, str] | None:
        if instruction not in record or output not in record:
            return None
        prompt = str(record[instruction])
        if extra and record.get(extra):
            prompt = f"{prompt}\n\n{record[extra]}"
        if template:
            prompt = template.format(instruction=record[instruction], input=record.get(extra or "", ""))
        return {"prompt": prompt, "reference": str(record[output])}

    return doc


def reader(ds: dict[str, Any], where: Where):
    """(record -> doc or None, apply the chat template?) for one test_datasets entry."""
    kind = ds.get("type")
    if isinstance(kind, dict):  # user-defined: axolotl's field_instruction / field_output and formats
        template = kind.get("no_input_format")
        return _from_fields(
            kind.get("field_instruction", "instruction"),
            kind.get("field_input"),
            kind.get("field_output", "output"),
            template if template and "{input}" not in template else None,
        ), False
    name = str(kind or "")
    if name.startswith(MESSAGE_PREFIXES):
        return _from_messages(ds), True
    if name.split(":")[0] in ALPACA_PREFIXES:
        return _from_fields("instruction", "input", "output"), name.startswith("alpaca_chat")
    raise UserError(
        f"make eval cannot take prompts and reference answers from a held-out split of type '{name}'",
        where,
        "give test_datasets a conversation (chat_template), alpaca or user-defined prompt/answer type",
    )


def docs(ds: dict[str, Any], where: Where) -> tuple[list[dict[str, str]], bool, str]:
    """(docs, apply the chat template?, the source's name)."""
    doc, chat = reader(ds, where)
    out = []
    for row in sources.rows(ds, limit=None if sources.is_local(ds) else 1000):
        if row.error or not isinstance(row.record, dict):
            continue
        try:
            d = doc(row.record)
        except (json.JSONDecodeError, AttributeError, KeyError, TypeError):
            d = None
        if d is not None and d["prompt"] and d["reference"]:
            out.append(d)
    label = str(dataset_file(ds)) if sources.is_local(ds) else sources.hub_label(ds)
    if not out:
        raise UserError(f"the held-out split {label} has no record with a prompt and an answer", where)
    return out, chat, label
