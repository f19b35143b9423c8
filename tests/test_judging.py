"""Verdict mapping for every order x reply, statistics against values computed here by hand, and
judge-report reproducing the seeds' published win rates from their raw rows."""

from __future__ import annotations

import json
import math

import pytest

from eval import judge_report, judged_io
from eval.stats import agreement, cohen_kappa, fleiss, win_summary
from eval.verdicts import combine, parse_label, to_model
from tests.conftest import SHARED

JUDGED = SHARED / "brie" / "judged"


@pytest.mark.parametrize(
    "reply,label",
    [
        ("Winner: A", "A"),
        ("Winner: B", "B"),
        ("Winner: Tie", "tie"),
        ("**Winner:** Response B\nReasoning: ...", "B"),
        ('{"winner": "A"}', "A"),
        ('{"winner": "tie"}', "tie"),
        ('{"winner": "Response B"}', "B"),
        ("The winner is A.", "A"),
        ("winner - draw", "tie"),
        ("", None),
        ("   ", None),
        (None, None),
        ("I prefer the second one.", None),
        ('{"winner": "C"}', None),
        ("Winner: A ... on reflection, Winner: B", None),
        ('{"winner": ', None),
        ("Winner: Alpha", None),
    ],
)
def test_parse_label(reply, label):
    assert parse_label(reply) == label


@pytest.mark.parametrize(
    "order,label,verdict",
    [
        ("CB", "A", "candidate"),
        ("CB", "B", "baseline"),
        ("BC", "A", "baseline"),
        ("BC", "B", "candidate"),
        ("CB", "tie", "tie"),
        ("BC", "tie", "tie"),
        ("CB", None, "invalid"),
        ("BC", None, "invalid"),
    ],
)
def test_every_order_and_verdict(order, label, verdict):
    assert to_model(label, order) == verdict


def test_unknown_order_is_an_error():
    with pytest.raises(ValueError):
        to_model("A", "AB")


@pytest.mark.parametrize(
    "first,second,pair",
    [
        ("candidate", "candidate", ("candidate", True)),
        ("baseline", "baseline", ("baseline", True)),
        ("tie", "tie", ("tie", True)),
        ("candidate", "baseline", ("tie", False)),
        ("candidate", "tie", ("tie", False)),
        ("invalid", "candidate", ("invalid", None)),
        ("baseline", "invalid", ("invalid", None)),
    ],
)
def test_both_orders_combine(first, second, pair):
    assert combine(first, second) == pair


def test_a_judge_that_always_answers_a_gets_ties_not_wins():
    verdicts = [combine(to_model("A", "CB"), to_model("A", "BC")) for _ in range(40)]
    assert {v for v, _ in verdicts} == {"tie"} and not any(c for _, c in verdicts)
    assert win_summary([v for v, _ in verdicts])["wins"] == 0


def test_wilson_interval_and_sign_test_by_hand():
    s = win_summary(["candidate"] * 53 + ["baseline"] + ["tie"] * 3)
    n, p, z = 57, 53 / 57, 1.959963984540054
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    assert s["ci95"] == pytest.approx([centre - half, centre + half], abs=1e-9)
    assert s["win_rate"] == pytest.approx(53 / 57)
    assert s["sign_test_p"] == pytest.approx(2 * sum(math.comb(54, k) for k in range(0, 2)) / 2**54)
    assert s["warning"] is None and win_summary(["candidate"] * 10)["warning"]


def test_kappas_by_hand():
    a = ["candidate", "candidate", "baseline", "baseline", "tie", "candidate"]
    b = ["candidate", "baseline", "baseline", "baseline", "tie", "tie"]
    po = 4 / 6
    pe = (3 / 6) * (1 / 6) + (2 / 6) * (3 / 6) + (1 / 6) * (2 / 6)
    assert cohen_kappa(a, b) == pytest.approx((po - pe) / (1 - pe))
    rows = [["candidate"] * 3, ["candidate", "candidate", "baseline"], ["baseline"] * 3, ["tie", "baseline", "tie"]]
    counts = [[3, 0, 0], [2, 1, 0], [0, 3, 0], [0, 1, 2]]
    n, k = 3, len(rows)
    p_i = [(sum(c * c for c in row) - n) / (n * (n - 1)) for row in counts]
    p_j = [sum(row[j] for row in counts) / (k * n) for j in range(3)]
    p_bar, pe_bar = sum(p_i) / k, sum(x * x for x in p_j)
    assert fleiss(rows) == pytest.approx((p_bar - pe_bar) / (1 - pe_bar))
    agree = agreement({"x": dict(enumerate(a)), "y": dict(enumerate(b)), "z": dict(enumerate(a))})
    assert agree["all_agree"] == 4 and agree["items"] == 6


@pytest.fixture
def seed_exports():
    if not JUDGED.is_dir():
        pytest.skip(f"../shared is absent ({JUDGED} not found): the seed exports live only there")
    return sorted(JUDGED.glob("*.jsonl"))


def test_judge_report_reproduces_the_published_win_rates(seed_exports):
    report = judge_report.analyze(seed_exports)
    files = {name.split("_judged_")[-1]: e for name, e in report["files"].items()}
    gpt, gemini = files["gpt_4o_20251021_182842.jsonl"], files["gemini_2_5_flash_lite_20251021_182943.jsonl"]
    assert (gpt["wins"], gpt["n"], round(100 * gpt["win_rate"], 1)) == (53, 57, 93.0)
    assert (gemini["wins"], gemini["n"], round(100 * gemini["win_rate"], 1)) == (54, 57, 94.7)
    assert gpt["published"]["reproduced"] and gemini["published"]["reproduced"]
    claude = files["20251021_203743.jsonl"]
    assert (claude["wins"], claude["n"]) == (45, 57) and claude["published"]["win_rate"] == 0.912
    assert not claude["published"]["reproduced"]
    for e in report["files"].values():
        assert e["audit"]["parse_vs_stored"] == []  # our parse of the raw text agrees with every stored winner
    assert claude["audit"]["stored_vs_original_buggy"] > 0  # the seed's label bug, visible in its own rows
    run = report["runs"]["comprehensive_eval_3b_final_20251018_175044"]
    assert run["items"] == 57 and len(run["judges"]) == 3 and run["published_all_agree_rate"] == 0.86
    text = judge_report.markdown(report)
    assert "93.0 %" in text and "94.7 %" in text and "NOT reproduced" in text


def test_judged_io_names_bad_lines(tmp_path):
    bad = tmp_path / "x.jsonl"
    bad.write_text(json.dumps({"format": "affinage-judged-v1", "item": "a"}) + "\n{oops\n")
    with pytest.raises(Exception) as exc:
        judged_io.read(bad)
    assert "x.jsonl:2" in str(exc.value)


def test_suite_lines_fall_back_to_the_recipe_sampling(tmp_path):
    from eval.generate import load_suite

    suite = tmp_path / "s.jsonl"
    suite.write_text(
        json.dumps({"prompt": "a"}) + "\n" + json.dumps({"prompt": "b", "temperature": 1.0, "max_tokens": 64}) + "\n"
    )
    first, second = load_suite(suite, sampling={"temperature": 0.7, "top_p": None, "max_new_tokens": 256})
    assert (first["temperature"], first["max_tokens"], first["top_p"]) == (0.7, 256, None)
    assert (second["temperature"], second["max_tokens"]) == (1.0, 64)
