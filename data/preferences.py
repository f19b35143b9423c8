"""Preference data: the formats axolotl's DPO/IPO/SimPO/ORPO and KTO strategies read, read into one canonical
form (prompt turns, chosen text, rejected text; or prompt turns, completion, label for KTO), checked row by row,
converted between formats, and summarised per side.

Formats (the repo's names):
  pairs           {"prompt": str, "chosen": str, "rejected": str}            (chatml/llama3 .prompt_pairs)
  pairs-messages  {"messages": [turns], "chosen": str, "rejected": str}      (chat_template.default; the seeds' file)
  pairs-chat      {"system"?: str, "chosen": [user, assistant, ...], "rejected": [...]}
                  (ORPO's chat_template.argilla; DPO's chat_template.argilla_chat)
  kto             {"prompt": str | [turns], "completion": str, "label": bool}
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

FORMATS = ("pairs", "pairs-messages", "pairs-chat", "kto")
ROLES = ("system", "user", "assistant")


class PreferenceError(ValueError):
    """A record that does not fit the preference format it is read or written as."""


@dataclass(frozen=True)
class Pair:
    prompt: list[dict[str, str]]  # turns before the answer (ends with a user turn)
    chosen: str
    rejected: str


@dataclass(frozen=True)
class Judged:
    """KTO's unpaired form: one completion, desirable or not."""

    prompt: list[dict[str, str]]
    completion: str
    label: bool


def detect(record: Any) -> str | None:
    if not isinstance(record, dict):
        return None
    if "completion" in record and "label" in record:
        return "kto"
    if "chosen" in record and "rejected" in record:
        if "messages" in record:
            return "pairs-messages"
        if isinstance(record.get("chosen"), list) and "prompt" not in record:
            return "pairs-chat"
        return "pairs"
    return None


def _text(side: Any, name: str) -> str:
    """A side as text: a string, or a message or message list whose (last) message is the answer. axolotl trains
    side[-1] as the assistant's answer whatever its role, so a side that ends with a user (or system) turn would
    teach the model to speak as the user: refused here."""
    last, where = side, name
    if isinstance(side, list):
        if not side:
            raise PreferenceError(f"'{name}' is an empty list")
        last, where = side[-1], f"{name}[{len(side) - 1}]"
    if isinstance(last, dict):
        role = last.get("role")
        if role != "assistant":
            shown = f"a {role!r} turn" if role is not None else "a message with no role"
            raise PreferenceError(
                f"'{name}' ends with {shown} ({where}), not an assistant turn: axolotl trains {name}[-1] as the answer"
            )
        last = last.get("content")
    if not isinstance(last, str):
        raise PreferenceError(f"'{where}' is {type(last).__name__}, not a string or a message")
    return last


def _turns(prompt: Any, name: str = "prompt") -> list[dict[str, str]]:
    if isinstance(prompt, str):
        return [{"role": "user", "content": prompt}]
    if not isinstance(prompt, list) or not prompt:
        raise PreferenceError(f"'{name}' must be a string or a non-empty list of messages")
    out = []
    for i, turn in enumerate(prompt):
        if not isinstance(turn, dict) or not isinstance(turn.get("content"), str) or turn.get("role") not in ROLES:
            raise PreferenceError(f"{name}[{i}] needs a role ({', '.join(ROLES)}) and string content")
        out.append({"role": turn["role"], "content": turn["content"]})
    return out


def read(record: Any, fmt: str) -> Pair | Judged:
    """The canonical form of a record in `fmt`; PreferenceError when it does not fit."""
    if not isinstance(record, dict):
        raise PreferenceError("record is not a JSON object")
    if fmt == "kto":
        if not isinstance(record.get("label"), bool):
            raise PreferenceError("'label' must be true (desirable) or false (undesirable)")
        return Judged(_turns(record.get("prompt")), _text(record.get("completion"), "completion"), record["label"])
    for side in ("chosen", "rejected"):
        if side not in record:
            raise PreferenceError(f"no '{side}' field")
    if fmt == "pairs-chat":
        chosen, rejected = _turns(record["chosen"], "chosen"), _turns(record["rejected"], "rejected")
        for name, turns in (("chosen", chosen), ("rejected", rejected)):
            _text(turns, name)  # each side must end with the assistant's answer
        if chosen[:-1] != rejected[:-1]:
            raise PreferenceError("chosen and rejected conversations differ before their last turn (not one prompt)")
        system = record.get("system")
        head = [{"role": "system", "content": system}] if isinstance(system, str) and system else []
        return Pair(head + chosen[:-1], chosen[-1]["content"], rejected[-1]["content"])
    prompt = record.get("messages") if fmt == "pairs-messages" else record.get("prompt")
    turns = _turns(prompt, "messages" if fmt == "pairs-messages" else "prompt")
    if fmt == "pairs" and isinstance(record.get("system"), str) and record["system"]:
        turns = [{"role": "system", "content": record["system"]}, *turns]
    return Pair(turns, _text(record["chosen"], "chosen"), _text(record["rejected"], "rejected"))


def problem(item: Pair | Judged) -> str | None:
    """The reason a canonical record would teach nothing or the wrong thing, or None."""
    roles = [t["role"] for t in item.prompt]
    if roles.count("system") > (roles[0] == "system"):
        return "a system turn after the first"
    rest = [r for r in roles if r != "system"]
    if not rest or rest[-1] != "user" or any(a == b for a, b in zip(rest, rest[1:], strict=False)):
        return f"prompt roles out of order ({' -> '.join(roles)}): user/assistant must alternate, ending with user"
    last = item.prompt[-1]["content"].strip()
    if not last:
        return "the prompt's last user turn is empty"
    sides = (
        {"completion": item.completion}
        if isinstance(item, Judged)
        else {"chosen": item.chosen, "rejected": item.rejected}
    )
    for name, text in sides.items():
        if not text.strip():
            return f"'{name}' is empty"
        if text.strip() == last or (len(last) >= 20 and text.strip().startswith(last)):
            return f"'{name}' repeats the prompt"
    if isinstance(item, Pair) and item.chosen.strip() == item.rejected.strip():
        return "chosen is identical to rejected (nothing to prefer)"
    return None


def check(record: Any, fmt: str) -> str | None:
    try:
        return problem(read(record, fmt))
    except PreferenceError as exc:
        return str(exc)


def write(item: Pair, fmt: str, extra: dict | None = None) -> list[dict]:
    """A pair in `fmt` (kto: two records, the chosen desirable and the rejected not)."""
    extra = dict(extra or {})
    system = [t for t in item.prompt if t["role"] == "system"]
    if fmt == "pairs-messages":
        return [{"messages": item.prompt, "chosen": item.chosen, "rejected": item.rejected, **extra}]
    if fmt == "pairs-chat":  # the system prompt in its own field, as ORPO's chat_template.argilla reads it
        turns = [t for t in item.prompt if t["role"] != "system"]
        return [
            {
                **({"system": system[0]["content"]} if system else {}),
                "chosen": [*turns, {"role": "assistant", "content": item.chosen}],
                "rejected": [*turns, {"role": "assistant", "content": item.rejected}],
                **extra,
            }
        ]
    if len([t for t in item.prompt if t["role"] != "system"]) != 1:
        raise PreferenceError(f"a {len(item.prompt)}-turn prompt cannot become one prompt string ({fmt})")
    prompt = item.prompt[-1]["content"]
    head = {"system": system[0]["content"]} if system else {}
    if fmt == "pairs":
        return [{"prompt": prompt, **head, "chosen": item.chosen, "rejected": item.rejected, **extra}]
    if fmt == "kto":
        return [
            {"prompt": prompt, **head, "completion": item.chosen, "label": True, **extra},
            {"prompt": prompt, **head, "completion": item.rejected, "label": False, **extra},
        ]
    raise PreferenceError(f"unknown preference format '{fmt}' (one of {', '.join(FORMATS)})")


def pair_up(items: Iterable[tuple[int, Judged]]) -> tuple[list[Pair], list[int]]:
    """KTO rows back into pairs: each desirable completion with an undesirable one for the same prompt, in file
    order. Returns (pairs, lines left without a partner)."""
    open_: dict[str, dict[bool, list[tuple[int, str]]]] = {}
    keys: dict[str, list[dict[str, str]]] = {}
    for line, it in items:
        key = repr(it.prompt)
        keys[key] = it.prompt
        open_.setdefault(key, {True: [], False: []})[it.label].append((line, it.completion))
    pairs, alone = [], []
    for key, sides in open_.items():
        for (_, good), (_, bad) in zip(sides[True], sides[False], strict=False):
            pairs.append(Pair(keys[key], good, bad))
        n = min(len(sides[True]), len(sides[False]))
        alone += [line for line, _ in sides[True][n:] + sides[False][n:]]
    return pairs, sorted(alone)


def side_stats(items: list[Pair | Judged], count=len) -> dict[str, Any]:
    """Per-side length figures (characters by default, tokens with a tokenizer's count) and the share of pairs
    whose chosen side is the longer one: judges favour length, and a set that does teaches length."""
    import numpy as np

    pairs = [i for i in items if isinstance(i, Pair)]
    if not pairs:
        good = [count(i.completion) for i in items if isinstance(i, Judged) and i.label]
        bad = [count(i.completion) for i in items if isinstance(i, Judged) and not i.label]
        return {"desirable": _summary(np, good), "undesirable": _summary(np, bad)}
    chosen = [count(p.chosen) for p in pairs]
    rejected = [count(p.rejected) for p in pairs]
    longer = sum(c > r for c, r in zip(chosen, rejected, strict=True))
    return {
        "pairs": len(pairs),
        "chosen": _summary(np, chosen),
        "rejected": _summary(np, rejected),
        "chosen_longer_share": longer / len(pairs),
    }


def _summary(np, values: list[int]) -> dict[str, float]:
    if not values:
        return {"n": 0}
    arr = np.array(values)
    return {
        "n": len(values),
        "min": int(arr.min()),
        "median": float(np.median(arr)),
        "p95": float(np.percentile(arr, 95)),
        "max": int(arr.max()),
    }
