"""Markdown tables of text we did not write keep their columns: a `|` or a line break inside a cell is escaped."""

from __future__ import annotations

from core import mdtable
from eval.leaderboard import md_table
from tools.export.cards import _table


def columns(line: str) -> int:
    return len(line.replace("\\|", "").strip("|").split("|"))


def test_a_pipe_or_a_newline_in_a_cell_keeps_the_row_whole():
    lines = mdtable.table(["run", "score"], [("a|b", "1"), ("two\nlines", 2)])
    assert lines == ["| run | score |", "|---|---|", "| a\\|b | 1 |", "| two lines | 2 |"]
    assert {columns(line) for line in lines} == {2}


def test_the_leaderboard_and_the_card_escape_their_cells():
    assert md_table((["run", "judge"], [["x|y", "local"]]))[-1] == "| x\\|y | local |"
    card = _table([("system prompt", "answer | briefly"), ("unset", None)])
    assert card.splitlines()[-1] == "| system prompt | answer \\| briefly |" and "unset" not in card
