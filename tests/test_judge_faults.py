"""Judge endpoint faults through the real OpenAI client against a scripted local server (tests/openai_server.py):
429 and 500 are retried with backoff and then judged; a judge that times out on every retry is recorded as a
failed request (invalid, never a win) and asked again by the next run; replies cut short are invalid unless
the verdict came before the cut; a row cut short by an interrupted write is dropped and re-asked; a corrupt
cache line is an error naming it."""

from __future__ import annotations

import json

import pytest

from core import settings
from core.errors import UserError
from eval.judge import failures, judge_all, load_judges
from tests.openai_server import OpenAIServer

MARKERS = ["[rate-limit-once]", "[5xx-twice]", "[slow]", "[cut-before]", "[cut-after]", "[plain]"]


def items() -> list[dict]:
    return [{"item": i, "suite": "s", "config": "c", "prompt": f"prompt {i} {m}"} for i, m in enumerate(MARKERS)]


def rows_of(path) -> dict[tuple[int, str], dict]:
    return {(r["item"], r["order"]): r for r in map(json.loads, path.read_text().splitlines())}


@pytest.fixture
def judge(monkeypatch):
    with OpenAIServer() as server:
        monkeypatch.setenv("JUDGE_URL", server.url)
        monkeypatch.setenv("JUDGE_TIMEOUT_S", "1")
        monkeypatch.setenv("JUDGE_RETRIES", "2")
        [j] = load_judges(["local"], settings.load())
        yield j, server


def test_faults_are_retried_failed_rows_reasked_and_truncation_handled(judge, tmp_path):
    j, server = judge
    out = tmp_path / "local.jsonl"
    texts = {i["item"]: ("candidate text", "base text") for i in items()}
    counts = judge_all(j, items(), texts, out, "run", concurrency=3)
    assert counts["asked"] == 12 and counts["failed"] == 2 and "Timeout" in counts["first_error"]
    rows = rows_of(out)
    by_marker = {m: [rows[(i, o)] for o in ("CB", "BC")] for i, m in enumerate(MARKERS)}
    for m in ("[rate-limit-once]", "[5xx-twice]", "[plain]"):
        assert all(r["label"] == "A" and r["error"] is None for r in by_marker[m]), m
    assert server.seen["[rate-limit-once]"] == 3 and server.seen["[5xx-twice]"] == 4  # retried, then answered
    assert server.seen["[slow]"] == 2 * 3  # two orders x (1 + 2 retries), then given up
    assert all(r["verdict"] == "invalid" and r["reply"] is None for r in by_marker["[slow]"])
    assert all(r["label"] is None and r["verdict"] == "invalid" and r["reply"] for r in by_marker["[cut-before]"])
    assert all(r["label"] == "B" for r in by_marker["[cut-after]"])  # the verdict came before the cut

    error = failures({"judges": {"local": {"requests": counts}}})
    assert error and "2 judge request(s) failed after retries (local: APITimeoutError" in str(error)
    assert "run make judge again to ask only those" in str(error)

    # the judge recovers; an interrupted write left half a row at the end of the cache
    server.slow = False
    with out.open("a") as fh:
        fh.write('{"format": "affinage-judged/1", "item": 5, "or')
    again = judge_all(j, items(), texts, out, "run", concurrency=3)
    assert again == {"cached": 10, "asked": 2, "failed": 0}
    rows = rows_of(out)
    assert len(out.read_text().splitlines()) == len(rows) == 12 and all(r["error"] is None for r in rows.values())
    assert failures({"judges": {"local": {"requests": again}}}) is None
    assert all(a == "Bearer not-needed" for a in server.auth)


def test_a_corrupt_cache_line_names_the_line(judge, tmp_path):
    j, _ = judge
    out = tmp_path / "local.jsonl"
    out.write_text('{"item": 0, "order": "CB"}\nnot json\n{"item": 0, "order": "BC"}\n')
    before = out.read_bytes()
    with pytest.raises(UserError) as exc:
        judge_all(j, items(), {i["item"]: ("a", "b") for i in items()}, out, "run", concurrency=1)
    assert exc.value.where.line == 2 and str(out) in str(exc.value) and out.read_bytes() == before
