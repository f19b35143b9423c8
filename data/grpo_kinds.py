"""Dataset types of a GRPO config (rl: grpo): prompt sets, not pairs. The repo's transforms (eval/grpo_data.py)
are `eval.grpo_suite` (an eval suite's lines, of which the training part is used) and `eval.grpo_prompts` (a
prompts file: `prompt` as text or turns ending with the user's, or `messages`); with no type, rows already hold
`prompt` and reach TRL as they are; any other `module.function` is a transform of the user's, not validated.
COLUMNS: what each gives the reward functions, which make check matches against their parameters."""

from __future__ import annotations

from typing import Any

from data.kind import Kind

SUITE, PROMPTS = "eval.grpo_suite", "eval.grpo_prompts"
# the columns eval/grpo_data.py's transforms add to every row (the reward functions' keyword arguments)
TRANSFORM_COLUMNS = frozenset({"prompt", "prompt_key", "eos_token_id", "max_completion_length"})
ROLES = ("system", "user", "assistant")
USE = f"type: {SUITE} (the training part of an eval suite) or type: {PROMPTS} (a prompts file)"


def _turns(value: Any, field: str) -> str | None:
    if not isinstance(value, list) or not value:
        return f"'{field}' must be a non-empty list of turns"
    for i, m in enumerate(value):
        if not isinstance(m, dict) or m.get("role") not in ROLES or not isinstance(m.get("content"), str):
            return f"{field}[{i}] needs a role ({', '.join(ROLES)}) and string content"
    if value[-1]["role"] != "user":
        return f"'{field}' must end with the user's turn (the model answers it), not {value[-1]['role']}"
    return None


def prompt_row(record: Any, messages: bool = True) -> str | None:
    """Why a prompts-file row cannot be trained on, or None: `prompt` text or turns (or `messages` turns)."""
    if not isinstance(record, dict):
        return "record is not a JSON object"
    value = record.get("prompt")
    if value is None and messages and "messages" in record:
        return _turns(record["messages"], "messages")
    if isinstance(value, str):
        return None if value.strip() else "'prompt' is empty"
    if isinstance(value, list):
        return _turns(value, "prompt")
    return "no 'prompt' (text, or the turns up to the user's)" + (" or 'messages'" if messages else "")


def suite_line(record: Any) -> str | None:
    if not isinstance(record, dict) or not isinstance(record.get("prompt"), str) or not record["prompt"].strip():
        return "a suite line needs a non-empty string 'prompt'"
    return None


def grpo_kind(ds: dict):

    kind = ds.get("type")
    if kind == SUITE:
        return Kind(SUITE, suite_line, "suite lines with a prompt; its training part is trained on")
    if kind == PROMPTS:
        return Kind(PROMPTS, prompt_row, "a prompt as text or turns ending with the user's (or messages)")
    if kind is None:
        return Kind("(none)", lambda r: prompt_row(r, messages=False), "rows hold 'prompt', passed to TRL as is")
    name = kind if isinstance(kind, str) else "user-defined"
    if isinstance(kind, dict) or name.startswith(("chat_template.", "chatml.", "llama3.", "zephyr.", "passthrough")):
        return Kind(name, None, error=f"type {name} is a preference-pairs type; GRPO trains on prompts: {USE}")
    if name.count(".") != 1:
        return Kind(
            name,
            None,
            error=f"type {name}: axolotl loads a GRPO dataset transform only as module.function (one dot, the "
            f"module importable from the repo root); {USE}",
        )
    return Kind(name, None, "a transform of yours (module.function): records are not validated here")


def columns(ds: dict, first: Any) -> frozenset[str] | None:
    """The columns the reward functions receive from this dataset entry (first: its first record); None when a
    transform of the user's decides them."""
    own = frozenset(first) if isinstance(first, dict) else frozenset()
    kind = ds.get("type")
    if kind == SUITE:
        return TRANSFORM_COLUMNS
    if kind == PROMPTS:
        return TRANSFORM_COLUMNS | (own - {"messages"})
    if kind is None:
        return own
    return None
