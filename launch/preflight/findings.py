"""One result of a preflight check: error, warning or ok, with where it points and what to do."""

from __future__ import annotations

from dataclasses import dataclass

from core.errors import Where


@dataclass
class Finding:
    level: str  # error | warning | ok
    check: str
    message: str
    where: Where | None = None
    hint: str | None = None

    def __str__(self) -> str:
        loc = f"{self.where}: " if self.where and str(self.where) else ""
        hint = f"\n    hint: {self.hint}" if self.hint else ""
        return f"[{self.level}] {self.check}: {loc}{self.message}{hint}"
