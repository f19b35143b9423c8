"""A judge that cannot judge is said to be so: below the position-consistency floor its verdicts are unusable
and no win rate is printed (the embedded SmolLM2 judge answers "A" to all 62 pairs: it used to read "win rate
0.0 % (95 % CI 0.0-5.8 %)", as if the fine-tune had lost). Elsewhere the tie convention is stated and both
readings shown, computed here by hand. Structured output is asked for as each endpoint supports it."""

from __future__ import annotations

import json
import math

import pytest

from core import settings
from core.errors import UserError
from eval import judge_report, stats
from eval.judge import Judge, judge_all
from eval.verdicts import to_model
from tests.openai_server import OpenAIServer


def wilson(k: float, n: float) -> list[float]:
    z = 1.959963984540054
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return [centre - half, centre + half]


def test_both_tie_readings_by_hand():
    s = stats.win_summary(["candidate"] * 6 + ["baseline"] * 2 + ["tie"] * 2 + ["invalid"])
    assert s["ties_excluded"]["rate"] == pytest.approx(6 / 8)
    assert s["ties_excluded"]["ci95"] == pytest.approx(wilson(6, 8))
    assert s["ties_half"]["rate"] == pytest.approx(7 / 10)  # (6 + 2/2) / (6 + 2 + 2): invalid left out
    assert s["ties_half"]["ci95"] == pytest.approx(wilson(7, 10))
    assert s["win_rate"] == pytest.approx(6 / 11)  # as published: wins over every pair


def test_the_floor():
    assert stats.usability(None) == (True, "position consistency not measured (judged in one order only)")
    assert stats.usability(0.5) == (True, None)
    usable, why = stats.usability(0.2)
    assert not usable and "20 % < the 50 % floor" in why
    assert stats.usability(0.2, floor=0.1)[0]


def ours(path, always_a: bool, n: int = 62) -> None:
    rows = []
    for i in range(n):
        for order in ("CB", "BC"):
            label = "A" if always_a or order == "CB" else "B"
            rows.append(
                {"format": "affinage-judged-v1", "run": "r", "judge": "local", "suite": "s/c", "item": f"c#{i}"}
                | {"prompt": "p", "order": order, "reply": json.dumps({"winner": label}), "label": label}
                | {"verdict": to_model(label, order), "error": None}
            )
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def test_a_judge_that_always_answers_a_is_unusable_not_a_loss(tmp_path):
    ours(tmp_path / "always_a.jsonl", always_a=True)
    ours(tmp_path / "reads.jsonl", always_a=False)
    report = judge_report.analyze([tmp_path / "always_a.jsonl", tmp_path / "reads.jsonl"])
    bad, good = report["files"]["always_a.jsonl"], report["files"]["reads.jsonl"]
    assert bad["ties"] == 62 and bad["position_consistency"] == 0 and not bad["usable"]
    assert good["usable"] and good["position_consistency"] == 1 and good["ties_excluded"]["rate"] == 1
    text = judge_report.markdown(report)
    row = next(line for line in text.splitlines() if line.startswith("| always_a.jsonl"))
    cols = row.split(" | ")
    assert cols[4:7] == ["unusable"] * 3 and "5.8 %" not in row  # no win rate, no interval
    assert cols[-1] == "0.0 % |"  # what is shown instead: its position consistency
    assert "Tie convention" in text and "Unusable:** position consistency 0 %" in text
    assert "100.0 % (94.2 % - 100.0 %)" in text  # the usable judge: 62 of 62, Wilson
    lower = judge_report.analyze([tmp_path / "always_a.jsonl"], floor=0.0)["files"]["always_a.jsonl"]
    assert lower["usable"]  # JUDGE_MIN_CONSISTENCY=0 accepts it, and then shows its readings
    line = judge_report.one_line("local", {**bad, "requests": {}})
    assert line.startswith("local: UNUSABLE") and "%" not in line.split(";")[-1]


def test_the_floor_setting_is_a_share(monkeypatch):
    from core import settings

    assert judge_report.floor(settings.load({"JUDGE_MIN_CONSISTENCY": "0.7"})) == 0.7
    with pytest.raises(UserError, match="JUDGE_MIN_CONSISTENCY must be a number from 0 to 1, not '70'"):
        settings.load({"JUDGE_MIN_CONSISTENCY": "70"})  # refused where the environment is read


@pytest.mark.parametrize(
    "structured,sent",
    [
        ("json_schema", lambda b: b["response_format"]["type"] == "json_schema"),
        (
            "llama_cpp",
            lambda b: b["response_format"] == {"type": "json_object", "schema": b["response_format"]["schema"]},
        ),
        ("tools", lambda b: b["tool_choice"]["function"]["name"] == "verdict" and "response_format" not in b),
        ("none", lambda b: "response_format" not in b and "tools" not in b),
    ],
)
def test_structured_output_as_the_endpoint_supports_it(tmp_path, structured, sent):
    with OpenAIServer() as server:
        spec = {"base_url": server.url, "model": "m", "key_env": None, "structured": structured}
        judge = Judge("j", spec | {"price": {"input": 0, "output": 0}}, settings.load())
        items = [{"item": 0, "suite": "s", "config": "c", "prompt": "p"}]
        judge_all(judge, items, {0: ("cand", "base")}, tmp_path / "j.jsonl", "run", concurrency=1)
    rows = [json.loads(line) for line in (tmp_path / "j.jsonl").read_text().splitlines()]
    assert {r["label"] for r in rows} == {"A"} and all(sent(b) for b in server.bodies)
    assert all(json.loads(r["reply"])["winner"] == "A" for r in rows)  # from the tool call's arguments, too


def test_one_order_exports_say_consistency_is_not_measured(tmp_path):
    path = tmp_path / "seed.jsonl"
    path.write_text(
        "".join(
            json.dumps({"judgment": "Winner: B", "brie_response": "x", "prompt_num": i, "config_name": "c"}) + "\n"
            for i in range(3)
        )
    )
    entry = judge_report.analyze([path])["files"]["seed.jsonl"]
    assert entry["usable"] and entry["position_consistency"] is None
    assert "not measured" in judge_report.markdown(judge_report.analyze([path]))
