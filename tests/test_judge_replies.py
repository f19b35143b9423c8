"""The judge-reply corpus (tests/judge_replies.yaml): every reply gives exactly the label listed, and a reply
without a clear label is invalid in both orders, never a win."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from eval.verdicts import combine, parse_label, to_model

CASES = yaml.safe_load(Path(__file__).with_name("judge_replies.yaml").read_text())


def test_the_corpus_covers_the_misread_classes():
    replies = [c["reply"] for c in CASES]
    assert len(replies) == len(set(replies)) >= 30
    assert any("a tie" in r for r in replies) and any("A or B" in r for r in replies)
    assert any("[[C]]" in r for r in replies) and any(r.lstrip().startswith("{") for r in replies)


@pytest.mark.parametrize("case", CASES, ids=[f"{i:02d}" for i in range(len(CASES))])
def test_reply(case):
    label = parse_label(case["reply"])
    assert label == case["label"], case["reply"]
    if label is None:  # no label: invalid whatever the order, so never counted as a win
        assert combine(to_model(label, "CB"), to_model(label, "BC")) == ("invalid", None)
