"""Reward functions a GRPO recipe names in trl.reward_funcs by dotted path (eval.rewards.format_reward, ...), and
what every reward here shares: how a completion's text is read.

TRL calls a reward function as f(prompts=, completions=, completion_ids=, **dataset columns, trainer_state=,
log_extra=, log_metric=) and takes one float per completion (None: no reward for that one). A conversational
prompt's completions arrive as [{"role": "assistant", "content": ...}]. The columns these rewards read
(eos_token_id, max_completion_length) come from the prompt-set transforms (eval/grpo_data.py); make check
refuses a reward whose required column the dataset does not give. Every reward here can fail: each scores some
completions 0 (tests/test_grpo_rewards.py shows which).

Why in eval/: the trainer process imports them by dotted path from the repo root (core/childenv.py puts it on
PYTHONPATH); the judge reward (eval/reward_judge.py) uses eval's judge client, and rewards are evaluation, which
sits above launch in the layers. Nothing below imports them: the launcher and make check load them by the name
the recipe gives, as the trainer does (launch/preflight/grpo.py load_reward).
"""

from __future__ import annotations

import re
from typing import Any

# what a chat template writes around turns: in a completion they mean the model leaked the format
TEMPLATE_MARKERS = re.compile(
    r"<\|[a-z_]+\|>|\[/?INST\]|<(?:start|end)_of_turn>|</?s>|<\|(?:begin|end)_of_text\|>", re.IGNORECASE
)
# a completion that starts another speaker's turn (it goes on writing the conversation)
NEW_TURN = re.compile(r"^\s*(?:user|human|assistant|system|### (?:instruction|response))\s*:", re.IGNORECASE | re.M)


def text_of(completion: Any) -> str:
    """The text of a completion: a string (standard prompts) or the assistant message (conversational)."""
    if isinstance(completion, list):
        return "".join(str(m.get("content") or "") for m in completion if isinstance(m, dict))
    if isinstance(completion, dict):
        return str(completion.get("content") or "")
    return str(completion)


def prompt_text(prompt: Any) -> str:
    """The user's request in a prompt: a string, or the last user message of a conversation."""
    if isinstance(prompt, list):
        users = [str(m.get("content") or "") for m in prompt if isinstance(m, dict) and m.get("role") == "user"]
        return users[-1] if users else ""
    return str(prompt)


def format_problem(text: str, prompt: str, pattern: str | None = None) -> str | None:
    """Why a completion is malformed, or None. With a `pattern` (a regular expression, the dataset's `format`
    column) the whole stripped text must match it; otherwise it must be non-empty, leak no chat-template marker,
    not open another speaker's turn and not begin by repeating the prompt."""
    stripped = text.strip()
    if pattern:
        return None if re.fullmatch(pattern, stripped, re.DOTALL) else f"does not match {pattern!r}"
    if not stripped:
        return "empty"
    if TEMPLATE_MARKERS.search(text):
        return "a chat-template marker leaked into the text"
    if NEW_TURN.search(text):
        return "it opens another speaker's turn"
    head = prompt.strip()[:80]
    if head and stripped.lower().startswith(head.lower()):
        return "it repeats the prompt"
    return None


def format_reward(prompts: list, completions: list, format: list | None = None, **kwargs: Any) -> list[float]:
    """1.0 for a well-formed completion, 0.0 otherwise (format_problem). A dataset column `format` (a regular
    expression per prompt) asks for that exact shape instead."""
    patterns = format or [None] * len(completions)
    return [
        0.0 if format_problem(text_of(c), prompt_text(p), f) else 1.0
        for p, c, f in zip(prompts, completions, patterns, strict=True)
    ]


def length_reward(completions: list, completion_ids: list, max_completion_length: list, **kwargs: Any) -> list[float]:
    """1.0 at the target length in tokens, falling linearly to 0.0 at no tokens or at twice the target. The target
    is the dataset's `target_tokens` column, else half of max_completion_length: a completion cut off at the
    limit scores 0, as does an empty one."""
    targets = kwargs.get("target_tokens") or [max(1, int(m) // 2) for m in max_completion_length]
    return [max(0.0, 1.0 - abs(len(ids) - int(t)) / int(t)) for ids, t in zip(completion_ids, targets, strict=True)]


def end_of_turn_reward(completions: list, completion_ids: list, eos_token_id: list, **kwargs: Any) -> list[float]:
    """1.0 when the model ended its turn (the last generated token is the tokenizer's eos, the chat's end of turn),
    0.0 when it was cut off at max_completion_length (or produced nothing)."""
    return [1.0 if ids and ids[-1] == int(eos) else 0.0 for ids, eos in zip(completion_ids, eos_token_id, strict=True)]
