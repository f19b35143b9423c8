"""From a judge's raw reply to a verdict about models: the one place position labels are mapped back.

A pair is shown as "Response A" / "Response B" (neutral labels). `order` says which model stood at A:
"CB" = candidate at A, baseline at B; "BC" = baseline at A, candidate at B. A reply that cannot be parsed
is "invalid" and is never counted as a win. The seeds lost 56 % of their verdicts to getting this wrong.

What counts as a label (tests/judge_replies.yaml holds the cases):
- a JSON object with a "winner" key (structured output; also inside a code fence or after some text); a
  value that is not A, B or a tie makes the reply invalid;
- MT-Bench's verdict markers [[A]], [[B]] and [[C]] (C is MT-Bench's tie);
- "Winner: X" / "Verdict: X" where X stands alone: followed by the end of the line or punctuation. So
  "Winner: a tie" is a tie (the article "a" is no label), and "Winner: A or B", "Winner: A is worse" and
  "Winner: A/B" are no label at all.
Every label the reply gives counts, in any of these forms and in any mix of them: a reply that names two
different winners (`{"winner": "A"} Actually, Winner: B`, `[[A]] ... [[B]]`, two JSON verdicts) is invalid,
never the first one found.
"""

from __future__ import annotations

import json
import re

LABELS = ("A", "B", "tie")
VERDICTS = ("candidate", "baseline", "tie", "invalid")
ORDERS = ("CB", "BC")
_TIE_WORDS = ("tie", "draw")
_JSON_VALUES = {"a": "A", "b": "B", "tie": "tie", "draw": "tie", "response a": "A", "response b": "B"}
# what may close a label: quotes, markdown emphasis, brackets; then the end of the line or punctuation
# (a dash only with a space after it, so "A-grade" is not a label)
_END = r"""(?=["'*_)\]]*[ \t]*(?:$|[.,;:!?(]|[-–—](?:\s|$)))"""
_LABEL = re.compile(
    r"\b(?:winner|verdict)\b[\s\"'*_:=\-–—]{0,8}(?:is[\s:]{1,3})?[\s\"'*_]{0,3}"
    r"(?:(?:the\s+)?response\s+)?(?:an?\s+(?=tie|draw))?(?P<label>A|B|tie|draw)\b" + _END,
    re.IGNORECASE | re.MULTILINE,
)
_MT_BENCH = re.compile(r"\[\[(A|B|C)\]\]")


def _json_winners(text: str) -> list[str | None]:
    """The label of every JSON object with a 'winner' key in the text (None where its value is no label)."""
    decoder = json.JSONDecoder()
    found: list[str | None] = []
    for start in (m.start() for m in re.finditer(r"\{", text)):
        try:
            obj, _ = decoder.raw_decode(text, start)
        except json.JSONDecodeError:
            continue
        if isinstance(obj, dict) and "winner" in obj:
            found.append(_JSON_VALUES.get(str(obj["winner"]).strip().lower()))
    return found


def labels(reply: str | None) -> list[str | None]:
    """Every label the reply gives, in each form the module doc lists (None: a JSON verdict that is no label)."""
    if not reply or not reply.strip():
        return []
    text = reply.strip()
    found: list[str | None] = _json_winners(text)
    found += [{"C": "tie"}.get(m.group(1), m.group(1)) for m in _MT_BENCH.finditer(text)]
    for m in _LABEL.finditer(text):
        value = m.group("label")
        found.append("tie" if value.lower() in _TIE_WORDS else value.upper())
    return found


def parse_label(reply: str | None) -> str | None:
    """'A', 'B' or 'tie' from a reply; None if absent, ambiguous or contradictory (see the module doc)."""
    found = set(labels(reply))
    return found.pop() if len(found) == 1 else None  # {None}: a JSON verdict that is no label


def to_model(label: str | None, order: str) -> str:
    """Map a position label to the model shown there."""
    if order not in ORDERS:
        raise ValueError(f"order must be one of {ORDERS}, not {order!r}")
    if label == "tie":
        return "tie"
    if label not in ("A", "B"):
        return "invalid"
    at_a, at_b = ("candidate", "baseline") if order == "CB" else ("baseline", "candidate")
    return at_a if label == "A" else at_b


def combine(first: str, second: str) -> tuple[str, bool | None]:
    """Both orders' verdicts -> (pair verdict, position-consistent?). Disagreement is a tie; invalid stays invalid."""
    if "invalid" in (first, second):
        return "invalid", None
    if first == second:
        return first, True
    return "tie", False
