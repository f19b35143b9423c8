"""What a dataset type's validator is: the record check every kinds module (SFT, preference, GRPO) returns."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Kind:
    name: str  # how messages name the type
    check: Callable[[Any], str | None] | None  # the reason a record is unusable, or None; None: not validated
    note: str = ""  # what the validator checks, or why it cannot
    error: str | None = None  # the type itself is wrong for an SFT config
