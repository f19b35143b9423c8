"""One error type for everything a user can cause: what, where, and what to do next."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass
class Where:
    """A place in a user's file: path, optional line and dotted key."""

    file: str | Path | None = None
    line: int | None = None
    key: str | None = None

    def __str__(self) -> str:
        parts = []
        if self.file is not None:
            parts.append(str(self.file) + (f":{self.line}" if self.line else ""))
        if self.key:
            parts.append(f"key '{self.key}'")
        return ", ".join(parts)


class UserError(Exception):
    """A problem in the user's input. Printed as one or two lines, never as a traceback."""

    def __init__(self, message: str, where: Where | None = None, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.where = where
        self.hint = hint

    def __str__(self) -> str:
        loc = f"{self.where}: " if self.where and str(self.where) else ""
        text = f"{loc}{self.message}"
        if self.hint:
            text += f"\n  hint: {self.hint}"
        return text
