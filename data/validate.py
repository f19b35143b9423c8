"""Read and check JSONL datasets: every bad record is named by file and line, none dropped silently.

Formats: `messages` (OpenAI chat: {"messages": [{"role", "content"}, ...]}), `prompt-completion`
({"prompt": str, "completion": str}), `sharegpt`, and the preference formats of data/preferences.py.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROLES = ("system", "user", "assistant", "tool")
FORMATS = ("messages", "prompt-completion", "sharegpt")


@dataclass
class Problem:
    file: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.message}"


@dataclass
class Report:
    file: str
    records: int
    problems: list[Problem]

    @property
    def ok(self) -> bool:
        return not self.problems


def read_jsonl(path: Path) -> Iterator[tuple[int, Any, str | None]]:
    """Yield (line number, parsed object or None, error or None) for every non-blank line."""
    with open(path, "rb") as fh:
        for lineno, raw_bytes in enumerate(fh, 1):
            try:
                raw = raw_bytes.decode("utf-8-sig" if lineno == 1 else "utf-8")
            except UnicodeDecodeError as exc:
                yield lineno, None, f"not valid UTF-8 (byte {exc.start + 1})"
                continue
            if not raw.strip():
                continue
            try:
                yield lineno, json.loads(raw), None
            except json.JSONDecodeError as exc:
                yield lineno, None, f"not valid JSON ({exc.msg} at column {exc.colno})"


def check_messages(record: Any, field: str = "messages") -> str | None:
    """The reason a `messages` record is unusable for training, or None."""
    if not isinstance(record, dict):
        return "record is not a JSON object"
    msgs = record.get(field)
    if msgs is None:
        return f"no '{field}' field"
    if not isinstance(msgs, list) or not msgs:
        return f"'{field}' must be a non-empty list"
    previous = None
    for i, msg in enumerate(msgs):
        if not isinstance(msg, dict):
            return f"{field}[{i}] is not an object"
        role, content = msg.get("role"), msg.get("content")
        if role not in ROLES:
            return f"{field}[{i}] has unknown role {role!r} (expected one of {', '.join(ROLES)})"
        if not isinstance(content, str):
            return f"{field}[{i}] ({role}) content is {type(content).__name__}, not a string"
        if role == "system" and i != 0:
            return f"{field}[{i}] is a system message after the first turn"
        if role == "assistant" and not content.strip():
            return f"{field}[{i}] is an empty assistant turn"
        if role in ("user", "assistant") and role == previous:
            return f"{field}[{i}] repeats role '{role}' (roles must alternate user/assistant)"
        if role == "assistant" and previous not in ("user", "tool"):
            return f"{field}[{i}] assistant turn does not follow a user turn"
        previous = role if role != "system" else previous
    if not any(m.get("role") == "assistant" for m in msgs):
        return "conversation has no assistant turn (nothing to train on)"
    return None


def check_prompt_completion(record: Any, prompt: str = "prompt", completion: str = "completion") -> str | None:
    if not isinstance(record, dict):
        return "record is not a JSON object"
    for key in (prompt, completion):
        if key not in record:
            return f"no '{key}' field"
        if not isinstance(record[key], str):
            return f"'{key}' is {type(record[key]).__name__}, not a string"
    if not record[completion].strip():
        return f"empty '{completion}' (nothing to train on)"
    return None


def check_sharegpt(record: Any) -> str | None:
    from data.formats import FormatError, to_messages

    if not isinstance(record, dict):
        return "record is not a JSON object"
    if "conversations" not in record:
        return "no 'conversations' field"
    try:
        return check_messages({"messages": to_messages(record, "sharegpt")})
    except FormatError as exc:
        return str(exc)


def check_preference(fmt: str):
    """A preference format's row check (data/preferences.py: both sides end with an assistant turn, ...)."""
    from data import preferences as prefs

    return lambda record: prefs.check(record, fmt)


def checker(fmt: str):
    from data.preferences import FORMATS as PREFERENCE

    if fmt in PREFERENCE:
        return check_preference(fmt)
    return {"messages": check_messages, "prompt-completion": check_prompt_completion, "sharegpt": check_sharegpt}[fmt]


def validate_file(path: Path, fmt: str, **fields: str) -> Report:
    """Check every line of a JSONL file in `fmt`; duplicates are reported too."""
    path = Path(path)
    check = checker(fmt)
    problems: list[Problem] = []
    seen: dict[str, int] = {}
    records = 0
    for lineno, obj, err in read_jsonl(path):
        records += 1
        reason = err or check(obj, **fields)
        if reason is None:
            key = json.dumps(obj, sort_keys=True)
            if key in seen:
                reason = f"duplicate of line {seen[key]}"
            else:
                seen[key] = lineno
        if reason:
            problems.append(Problem(str(path), lineno, reason))
    if records == 0:
        problems.append(Problem(str(path), 1, "file has no records"))
    return Report(str(path), records, problems)
