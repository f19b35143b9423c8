"""The judge end to end against a real local judge: `python -m llama_cpp.server` serving SmolLM2 on 127.0.0.1.
SmolLM2 shows a real position bias (it answers "A"); both-order judging must turn that into ties and a low
position consistency, never into wins. Also: resume from the cache, and an unreachable judge scored invalid."""

from __future__ import annotations

import json

import pytest

from core import manifest, settings
from core.errors import UserError
from core.paths import REPO
from eval.judge import run_judging
from tests.shared_runs import copy_run

SUITE = REPO / "eval" / "suites" / "brie.jsonl"


@pytest.mark.slow
def test_local_judge_both_orders(default_run, llama_server, monkeypatch, outputs):
    run = copy_run(default_run[0], outputs)  # judging writes into the run
    monkeypatch.setenv("JUDGE_URL", llama_server)
    section = run_judging(run, ["local"], SUITE, limit=4, concurrency=2, max_new_tokens=24, s=settings.load())
    rows = [json.loads(line) for line in (run / "judge" / "local.jsonl").read_text().splitlines()]
    assert len(rows) == 8 and {(r["item"], r["order"]) for r in rows} == {
        (i, o) for i in {r["item"] for r in rows} for o in ("CB", "BC")
    }
    assert all(r["reply"] for r in rows)  # raw judge text kept
    s = section.judges["local"]
    assert s["n"] == 4 and s["wins"] + s["losses"] + s["ties"] + s["invalid"] == 4
    # a judge that answers the same letter whatever the order produces ties, not wins
    same_letter = sum(1 for i in {r["item"] for r in rows} if len({r["label"] for r in rows if r["item"] == i}) == 1)
    assert s["ties"] >= same_letter and s["position_consistency"] <= 1 - same_letter / 4
    assert s["warning"] and "n=4" in s["warning"]
    assert manifest.read(run).judge.judges["local"]["n"] == 4

    again = run_judging(run, ["local"], SUITE, limit=4, concurrency=2, max_new_tokens=24, s=settings.load())
    assert again.judges["local"]["requests"] == {"cached": 8, "asked": 0, "failed": 0}


@pytest.mark.slow
def test_unreachable_judge_is_invalid_never_a_win(default_run, monkeypatch, outputs, tmp_path):
    run = copy_run(default_run[0], outputs)
    monkeypatch.setenv("JUDGE_URL", "http://127.0.0.1:9/v1")  # discard port: nothing listens
    section = run_judging(run, ["local"], SUITE, limit=1, concurrency=2, max_new_tokens=24, s=settings.load())
    s = section.judges["local"]
    assert s["invalid"] == 1 and s["wins"] == 0
    rows = [json.loads(line) for line in (run / "judge" / "local.jsonl").read_text().splitlines()]
    assert all(r["verdict"] == "invalid" and "Connection" in r["error"] for r in rows)
    (run / "judge" / "local.jsonl").unlink()


def test_unknown_judge_and_missing_key(monkeypatch):
    from eval.judge import load_judges

    with pytest.raises(UserError, match="unknown judge"):
        load_judges(["gpt-5-turbo-max"], settings.load())
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(UserError, match="OPENAI_API_KEY"):
        load_judges(["gpt-4o"], settings.load())
