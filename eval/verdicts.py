"""From a judge's raw reply to a verdict about models: the one place position labels are mapped back.

A pair is shown as "Response A" / "Response B" (neutral labels). `order` says which model stood at A:
"CB" = candidate at A, baseline at B; "BC" = baseline at A, candidate at B. A reply that cannot be parsed
is "invalid" and is never counted as a win. The seeds lost 56 % of their verdicts to getting this wrong.
"""

from __future__ import annotations

import json
import re

LABELS = ("A", "B", "tie")
VERDICTS = ("candidate", "baseline", "tie", "invalid")
ORDERS = ("CB", "BC")
_WINNER = re.compile(r"\bwinner\b\W{0,6}(?:is\W{0,3})?(?:response\s*)?(A|B|tie|draw)\b", re.IGNORECASE)


def parse_label(reply: str | None) -> str | None:
    """'A', 'B' or 'tie' from a reply (JSON {"winner": ...} or a 'Winner: X' line); None if absent or contradictory."""
    if not reply or not reply.strip():
        return None
    text = reply.strip()
    if text.startswith("{"):
        try:
            value = str(json.loads(text).get("winner", "")).strip()
        except (json.JSONDecodeError, AttributeError):
            value = ""
        norm = {"a": "A", "b": "B", "tie": "tie", "draw": "tie", "response a": "A", "response b": "B"}.get(
            value.lower()
        )
        if norm:
            return norm
    found = {("tie" if m.group(1).lower() in ("tie", "draw") else m.group(1).upper()) for m in _WINNER.finditer(text)}
    return found.pop() if len(found) == 1 else None


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
