"""Text we did not write (run and model names, prompts, judge names, config values) keeps its place: markdown
tables escape a `|` or a line break inside a cell, and the study page (a Jinja2 template) escapes every value."""

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


def test_the_study_page_escapes_every_value(tmp_path):
    from eval.study import html

    gen = {"item": 1, "prompt": "<script>alert(1)</script>", "suite": 's"x', "config": "c", "candidate": "a&b"}
    entry = {
        "key": "<run>",
        "generations": [{**gen, "baseline": None}],
        "verdicts": {"1": {"judge<": {"CB": {"label": "A", "verdict": "<win>"}}}},
        "judges": {"judge<": {"usable": False}},
    }
    text = html.page(
        "t <x>", [("h", 2, "<b>"), ("table", (["h|<"], [["<i>"]]))], tmp_path, {"entries": [entry], "models": []}
    )
    assert "<script>alert" not in text and "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    assert "<title>t &lt;x&gt;</title>" in text and "<h2>&lt;b&gt;</h2>" in text and "<td>&lt;i&gt;</td>" in text
    assert 'data-suite="s&#34;x/c"' in text and '<option value="s&#34;x/c">' in text  # attribute values too
    assert "&lt;run&gt;" in text and "a&amp;b" in text and "&lt;win&gt;" in text and "judge unusable" in text
