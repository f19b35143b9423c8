"""The judge-reply corpus (tests/judge_replies.yaml): every reply gives exactly the label listed, and a reply
without a clear label is invalid in both orders, never a win. A reply that names two different winners, in any
mix of the forms a label can take (JSON, MT-Bench's [[X]], "Winner: X"), is invalid; one whose labels all agree
gives that label: the corpus holds both for every ordered pair of forms, and every combination of forms, labels
and separators is checked here as well."""

from __future__ import annotations

import itertools
import json
import re
from pathlib import Path

import pytest
import yaml

from eval.verdicts import LABELS, combine, parse_label, to_model

CASES = yaml.safe_load(Path(__file__).with_name("judge_replies.yaml").read_text())

# how each form writes a label
FORMS = {
    "json": lambda x: json.dumps({"winner": x, "reason": "one sentence"}),
    "json-bare": lambda x: json.dumps({"winner": "Response " + x if x != "tie" else "draw"}),
    "mt-bench": lambda x: f"[[{'C' if x == 'tie' else x}]]",
    "winner-line": lambda x: f"Winner: {x}.",
    "verdict-line": lambda x: f"**Final verdict: {x}**\n",
}
SEPARATORS = ("\n", " Actually, ", "\n\nOn reflection: ")
# where each form occurs in a corpus reply (a JSON "winner" key is not a "Winner:" line)
FOUND = {
    "json": re.compile(r"\{\s*\"winner\""),
    "mt-bench": re.compile(r"\[\[[ABC]\]\]"),
    "line": re.compile(r"(?<![\"\w])(?:winner|verdict)\b(?!\")", re.IGNORECASE),
}


def forms_in(reply: str) -> list[str]:
    """The forms of a reply in the order they occur (JSON objects' insides left out)."""
    hits = sorted((m.start(), form) for form, rx in FOUND.items() for m in rx.finditer(reply))
    out, json_end = [], -1
    for start, form in hits:
        if start < json_end:
            continue
        if form == "json":
            json_end = reply.find("}", start) % (len(reply) + 1)  # a reply cut short: to its end
        out.append(form)
    return out


def test_the_corpus_covers_the_misread_classes():
    replies = [c["reply"] for c in CASES]
    assert len(replies) == len(set(replies)) >= 30
    assert any("a tie" in r for r in replies) and any("A or B" in r for r in replies)
    assert any("[[C]]" in r for r in replies) and any(r.lstrip().startswith("{") for r in replies)


def test_the_corpus_holds_disagreeing_and_agreeing_labels_for_every_pair_of_forms():
    pairs = {(True, a, b): [] for a in FOUND for b in FOUND} | {(False, a, b): [] for a in FOUND for b in FOUND}
    for c in CASES:
        found = forms_in(c["reply"])
        if len(found) == 2:
            pairs[(c["label"] is None, *found)].append(c["reply"])
    missing = [k for k, v in pairs.items() if not v]
    assert not missing, f"no corpus case for (disagree?, first form, second form): {missing}"


@pytest.mark.parametrize("case", CASES, ids=[f"{i:02d}" for i in range(len(CASES))])
def test_reply(case):
    label = parse_label(case["reply"])
    assert label == case["label"], case["reply"]
    if label is None:  # no label: invalid whatever the order, so never counted as a win
        assert combine(to_model(label, "CB"), to_model(label, "BC")) == ("invalid", None)


@pytest.mark.parametrize("first,second", list(itertools.product(FORMS, FORMS)))
def test_two_labels_in_any_forms_count_only_when_they_agree(first, second):
    for a, b, sep in itertools.product(LABELS, LABELS, SEPARATORS):
        reply = FORMS[first](a) + sep + FORMS[second](b)
        assert parse_label(reply) == (a if a == b else None), reply
        assert parse_label(FORMS[first](a)) == a  # each form alone reads as its label
