"""The three dataset formats and conversion between them, through one canonical form (a list of
{"role", "content"} messages). A record that cannot be converted faithfully is refused, never trimmed."""

from __future__ import annotations

from typing import Any

FORMATS = ("messages", "prompt-completion", "sharegpt")
SHAREGPT_ROLES = {
    "human": "user",
    "user": "user",
    "gpt": "assistant",
    "assistant": "assistant",
    "system": "system",
    "tool": "tool",
    "function": "tool",
}
TO_SHAREGPT = {"user": "human", "assistant": "gpt", "system": "system", "tool": "tool"}
OWN_FIELDS = {
    "messages": ("messages",),
    "prompt-completion": ("prompt", "completion", "system"),
    "sharegpt": ("conversations",),
}


class FormatError(ValueError):
    """A record that does not fit the format it is read or written as."""


def detect(record: Any) -> str | None:
    if isinstance(record, dict):
        if "messages" in record:
            return "messages"
        if "conversations" in record:
            return "sharegpt"
        if "prompt" in record or "completion" in record:
            return "prompt-completion"
    return None


def to_messages(record: dict, fmt: str) -> list[dict[str, str]]:
    if fmt == "messages":
        return record["messages"]
    if fmt == "prompt-completion":
        msgs = [{"role": "system", "content": record["system"]}] if record.get("system") else []
        return msgs + [
            {"role": "user", "content": record["prompt"]},
            {"role": "assistant", "content": record["completion"]},
        ]
    if fmt == "sharegpt":
        conv = record.get("conversations")
        if not isinstance(conv, list):
            raise FormatError("'conversations' must be a list")
        out = []
        for i, turn in enumerate(conv):
            if not isinstance(turn, dict) or "from" not in turn or "value" not in turn:
                raise FormatError(f"conversations[{i}] needs 'from' and 'value'")
            if turn["from"] not in SHAREGPT_ROLES:
                raise FormatError(
                    f"conversations[{i}] has unknown 'from' {turn['from']!r} "
                    f"(expected one of {', '.join(SHAREGPT_ROLES)})"
                )
            out.append({"role": SHAREGPT_ROLES[turn["from"]], "content": turn["value"]})
        return out
    raise FormatError(f"unknown format '{fmt}' (one of {', '.join(FORMATS)})")


def extras(record: dict, fmt: str) -> dict:
    """Fields that are not the format's own (persona, type, source, ...), carried through conversion."""
    return {k: v for k, v in record.items() if k not in OWN_FIELDS[fmt]}


def from_messages(messages: list[dict[str, str]], fmt: str, extra: dict | None = None) -> dict:
    extra = dict(extra or {})
    if fmt == "messages":
        return {"messages": messages, **extra}
    if fmt == "sharegpt":
        return {"conversations": [{"from": TO_SHAREGPT[m["role"]], "value": m["content"]} for m in messages], **extra}
    if fmt == "prompt-completion":
        roles = [m["role"] for m in messages]
        if roles not in (["user", "assistant"], ["system", "user", "assistant"]):
            raise FormatError(
                f"a {len(messages)}-message conversation ({' -> '.join(roles)}) cannot become one "
                "prompt/completion pair"
            )
        out = {"prompt": messages[-2]["content"], "completion": messages[-1]["content"]}
        if roles[0] == "system":
            out["system"] = messages[0]["content"]
        return {**out, **extra}
    raise FormatError(f"unknown format '{fmt}' (one of {', '.join(FORMATS)})")


def convert(record: dict, src: str, dst: str) -> dict:
    return from_messages(to_messages(record, src), dst, extras(record, src))
