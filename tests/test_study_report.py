"""`make study-report` on a finished study with known numbers (tests/study_fixtures.py): intervals on every
score, each model beside its base on the same documents, tiers from the named paired test with Holm, seed
repeats shown with their spread, a judge that answers by position reported as unusable (no win rate), both
tie readings for the others; the PNGs; and the one HTML page opened in a real headless Chromium from a file
URL with no network: tables and images present, no console errors, the suite filter works, screenshot kept."""

from __future__ import annotations

import json

import pytest

from tests.browser import browser, choose_suite, need_browser, open_page
from tests.conftest import run_cli
from tests.study_fixtures import crafted_study


@pytest.fixture
def report(tmp_path, outputs):
    study = crafted_study(tmp_path, outputs)
    proc = run_cli("eval.study.report", str(study), env={"OUTPUTS": str(outputs)}, timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    return outputs / "studies" / "crafted" / "report"


def test_the_report_states_what_the_numbers_support(report):
    text = (report / "report.md").read_text()
    lines = {line.split(" | ")[1]: line for line in text.splitlines() if line.startswith("| ") and " | hf | " in line}
    # the strong runs share tier 1 (their seeds cannot be told apart), the weak ones tier 2: no strict rank
    assert lines["strong-seed1"].startswith("| 1 |") and lines["strong-seed2"].startswith("| 1 |")
    assert lines["weak-seed1"].startswith("| 2 |") and lines["weak-seed2"].startswith("| 2 |")
    assert "| 3 | base: HuggingFaceTB/SmolLM2-135M-Instruct" in text
    assert "0.410 [0.40" in lines["strong-seed1"]  # the score with its interval
    assert "+0.300 [+0.300, +0.300]" in lines["strong-seed1"] and "(distinguishable)" in lines["strong-seed1"]
    assert "paired permutation test" in text and "Holm" in text and "bootstrap" in text
    pairs = [line for line in text.splitlines() if line.startswith("| strong-seed1 (hf) | strong-seed2 (hf)")]
    assert pairs and pairs[0].endswith("| not distinguishable |")
    # seed repeats: each seed's score and the spread between them
    assert "## Seed repeats: run-to-run spread" in text
    strong = next(line for line in text.splitlines() if line.startswith("| strong | seed 1: 0.410, seed 2: 0.412"))
    assert "| 0.001 |" in strong  # SD of 0.410 and 0.412
    # judging: the position-biased judge has no win rate; the other shows both tie readings
    judged = {line.split(" | ")[0][2:]: line for line in text.splitlines() if " | local | " in line}
    assert judged["weak-seed1"].count("unusable") == 3 and "position consistency 0 %" in judged["weak-seed1"]
    assert "100.0 % [51.0 %, 100.0 %]" in judged["strong-seed1"]  # 4 of 4, Wilson
    assert "Tie convention: ties excluded" in text
    data = json.loads((report / "report.json").read_text())
    assert len(data["entries"]) == 4 and data["seeds"][0]["sd"] == pytest.approx(0.001414, abs=1e-5)
    for image in ("metrics.png", "significance.png", "win_rates.png", "cost_quality.png"):  # no events: no loss
        assert (report / image).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", image
        assert f"]({image})" in text


def test_the_page_opens_offline_in_headless_chromium(report):
    need_browser()
    page = report / "report.html"
    html = page.read_text()
    assert "http://" not in html and "https://" not in html  # self-contained
    with browser() as driver:
        facts = open_page(driver, page, report / "report-screenshot.png")
        assert facts["title"] == "Study: crafted"
        assert facts["tables"] >= 4 and facts["rows"] >= 10
        assert facts["images"] >= 4 and facts["images_loaded"] == facts["images"]
        assert all(src.startswith("data:image/png;base64") for src in facts["image_sources"])
        assert facts["resources"] == [] and facts["external"] == []  # nothing fetched, nothing referenced
        assert [m for m in facts["console"] if m["level"] in ("SEVERE", "WARNING")] == [], facts["console"]
        assert "strong-seed1" in facts["text"] and "unusable" in facts["text"]
        assert facts["cards"] == 4 + 12  # four judged prompts, twelve held-out documents
        shown = choose_suite(driver, "out_of_domain/coding")
        assert shown["shown"] == ["out_of_domain/coding"] * 2 and shown["label"] == "2 of 16 prompts"
        assert len(choose_suite(driver, "held-out")["shown"]) == 12
        assert len(choose_suite(driver, "all")["shown"]) == 16
        prompt = driver.execute_script("return document.querySelector('.prompt').innerText")
        assert "fine-tune at A: label A" in prompt and "fine-tune at B: label B" in prompt  # both orders
    shot = report / "report-screenshot.png"
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    print(f"screenshot: {shot}")


def test_two_judges_get_their_agreement(tmp_path, outputs):
    """A second judge on strong-seed1 agrees on 3 of 4 prompts (it prefers the base model on p#3, in both
    orders). The first judge always prefers the fine-tune, so agreement by chance is already 3/4: Cohen's
    kappa (0.75 - 0.75) / (1 - 0.75) = 0, which the report states beside the 3 of 4."""
    from core import manifest
    from core.atomic import write_text
    from eval import judge_report
    from eval.judge import SUMMARY_KEYS
    from eval.verdicts import to_model
    from tests.study_fixtures import judged_rows

    study = crafted_study(tmp_path, outputs)
    run = outputs / "studies" / "crafted" / "strong-seed1" / "runs" / "smollm2-135m-cpu" / "20260101T000000Z"
    rows = judged_rows("strong-seed1", always_a=False)
    for r in rows:
        r["judge"] = "second"
        if r["item"] == "p#3":
            r["label"] = "B" if r["order"] == "CB" else "A"
            r["verdict"] = to_model(r["label"], r["order"])
            r["reply"] = json.dumps({"winner": r["label"]})
    write_text(run / "judge" / "second.jsonl", "".join(json.dumps(r) + "\n" for r in rows))
    files = [run / "judge" / "local.jsonl", run / "judge" / "second.jsonl"]
    analysis = judge_report.analyze(files)
    assert {r["verdict"] for r in rows if r["item"] == "p#3"} == {"baseline"}
    section = manifest.read(run).judge
    judges = {**section.judges, "second": {k: analysis["files"]["second.jsonl"][k] for k in SUMMARY_KEYS}}
    judges["second"]["requests"] = {"failed": 0}
    section = section.model_copy(
        update={
            "files": ["judge/local.jsonl", "judge/second.jsonl"],
            "judges": judges,
            "agreement": analysis["runs"]["strong-seed1"],
        }
    )
    manifest.write_sections(run, judge=section)
    proc = run_cli("eval.study.report", str(study), env={"OUTPUTS": str(outputs)}, timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    folder = outputs / "studies" / "crafted" / "report"
    text = (folder / "report.md").read_text()
    assert "strong-seed1: 4 items; Cohen's kappa local vs second 0.00; all agree 3" in text
    assert "| strong-seed1 | second |" in text  # its own row, with its own win rates
    assert "second" in (folder / "report.html").read_text()


def test_loss_curves_with_eval_loss_from_tensorboard_events(tmp_path, outputs):
    """Training and held-out eval loss as the trainer logs them (TensorBoard events under output/runs/,
    written here by torch's SummaryWriter) become the report's loss-curve plot, eval loss included."""
    from torch.utils.tensorboard import SummaryWriter

    study = crafted_study(tmp_path, outputs)
    run = outputs / "studies" / "crafted" / "strong-seed1" / "runs" / "smollm2-135m-cpu" / "20260101T000000Z"
    writer = SummaryWriter(str(run / "output" / "runs" / "Dec01_00-00-00_host"))
    for step, loss in ((1, 3.9), (2, 3.7), (3, 3.6), (4, 3.5)):
        writer.add_scalar("train/loss", loss, step)
    for step, loss in ((2, 3.8), (4, 3.6)):
        writer.add_scalar("eval/loss", loss, step)
    writer.close()
    proc = run_cli("eval.study.report", str(study), env={"OUTPUTS": str(outputs)}, timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    folder = outputs / "studies" / "crafted" / "report"
    text = (folder / "report.md").read_text()
    assert "## Loss curves" in text and "](loss_curves.png)" in text and "dashed: held-out eval loss" in text
    assert (folder / "loss_curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    entry = next(e for e in json.loads((folder / "report.json").read_text())["entries"] if e["key"] == "strong-seed1")
    train, evals = entry["loss"]
    assert [s for s, _ in train] == [1, 2, 3, 4] and [round(v, 3) for _, v in evals] == [3.8, 3.6]
