"""Markdown tables of text we did not write (run and model names, prompts, judge names, config values): a `|` in
a cell would end it and shift every column after it, and a line break would end the row."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


def cell(value: Any) -> str:
    return " ".join(str(value).split("\n")).replace("|", "\\|")


def row(cells: Iterable[Any]) -> str:
    return "| " + " | ".join(cell(c) for c in cells) + " |"


def table(headers: list[str], rows: Iterable[Iterable[Any]]) -> list[str]:
    """The table's lines: the header, the separator, then one line per row, every cell escaped."""
    return [row(headers), "|" + "---|" * len(headers), *(row(r) for r in rows)]
