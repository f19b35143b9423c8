"""The CPU study (studies/cpu.yaml) end to end, for real: two tiny runs trained on CPU, evaluated beside their
base model, judged by a scripted local judge (tests/openai_server.py: it prefers the longer answer, whatever
its position), reported. The study is killed (SIGKILL, the whole process group) while its second run trains;
the re-run skips the finished run without touching it and finishes the other. Then the report: intervals,
tiers from the named test, base rows, both tie readings, loss curves with eval loss, and the HTML page in
headless Chromium."""

from __future__ import annotations

import hashlib
import os
import re
import signal
import subprocess
import sys
import time

import pytest

from core import manifest, settings
from core.paths import REPO
from eval.study import report, state
from tests.browser import browser, need_browser, open_page
from tests.conftest import OFFLINE, run_cli
from tests.openai_server import OpenAIServer

STUDY = REPO / "studies" / "cpu.yaml"


def longer_wins(prompt: str) -> str:
    a = re.search(r"Response A:\n(.*?)\n\nResponse B:", prompt, re.S).group(1)
    b = re.search(r"Response B:\n(.*?)\n\nWhich response", prompt, re.S).group(1)
    winner = "A" if len(a) > len(b) else "B" if len(b) > len(a) else "tie"
    return f'{{"winner": "{winner}", "reason": "the longer answer"}}'


def tree(folder) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.rglob("*") if p.is_file()
    }


@pytest.fixture(scope="module")
def finished_study(tmp_path_factory):
    outputs = tmp_path_factory.mktemp("study-outputs")
    with OpenAIServer(longer_wins) as judge, pytest.MonkeyPatch.context() as mp:
        mp.setenv("OUTPUTS", str(outputs))  # this process reads the study's folder too
        env = {**os.environ, **OFFLINE, "OUTPUTS": str(outputs), "JUDGE_URL": judge.url, "PYTHONPATH": str(REPO)}
        for name in ("RECIPE", "RUN", "ARGS", "STUDY", "RUNPOD"):
            env.pop(name, None)
        study, runs, jobs, paths = report.load(str(STUDY), settings.load())
        first, second = runs
        log = open(outputs / "first-attempt.log", "w")  # noqa: SIM115 - closed below
        proc = subprocess.Popen(
            [sys.executable, "-m", "eval.study.run", str(STUDY)],
            cwd=REPO,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        killed_mid_training = False
        deadline = time.time() + 1800
        try:
            while time.time() < deadline and proc.poll() is None:
                done_first = all(state.progress(jobs[first.key], state.run_dir(paths, first)).values())
                started = state.started_dir(paths, second)
                ckpt = started is not None and any((started / "output").glob("checkpoint-*/trainer_state.json"))
                if done_first and ckpt and state.run_dir(paths, second) is None:
                    killed_mid_training = True
                    break
                time.sleep(0.5)
            assert proc.poll() is None, "the study ended before it could be killed"
        finally:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            log.close()
        assert killed_mid_training, (outputs / "first-attempt.log").read_text()[-3000:]
        first_run = state.run_dir(paths, first)
        before = tree(first_run)
        again = run_cli("eval.study.run", str(STUDY), env=env, timeout=1800)
        yield {
            "outputs": outputs,
            "paths": paths,
            "runs": runs,
            "jobs": jobs,
            "again": again,
            "first_run": first_run,
            "before": before,
            "judge": judge,
        }


@pytest.mark.slow
def test_the_rerun_skips_the_finished_run_and_finishes_the_killed_one(finished_study):
    s = finished_study
    said = s["again"].stdout + s["again"].stderr
    assert s["again"].returncode == 0, said[-4000:]
    first, second = s["runs"]
    assert f"{first.key}: done (finished before: skipped)" in said
    assert tree(s["first_run"]) == s["before"]  # not one byte of the finished run changed
    assert state.run_dir(s["paths"], first) == s["first_run"]
    runs_of_first = list((s["paths"].outputs(first) / "runs" / "smollm2-135m-cpu").glob("2*"))
    assert len(runs_of_first) == 1  # trained once
    second_run = state.run_dir(s["paths"], second)
    m = manifest.read(second_run)
    assert m.train.status == "completed" and m.resumes, "the killed run was resumed from its checkpoint"
    assert m.train.overrides["learning_rate"] == 2.0e-4 and m.train.overrides["max_steps"] == 4
    assert m.lm_eval.base is not None and set(m.lm_eval.samples) == {"hf", "base"}
    assert m.judge.judges["local"]["usable"] and m.judge.judges["local"]["n"] == 2


@pytest.mark.slow
def test_the_report_of_the_cpu_study(finished_study):
    folder = finished_study["paths"].report
    text = (folder / "report.md").read_text()
    assert "2 of 2 runs finished." in text
    rows = [line for line in text.splitlines() if re.match(r"\| \d \| (default|gentle|base: )", line)]
    assert len(rows) == 3 and all(" [" in r for r in rows)  # both runs and their base, each with intervals
    assert "paired permutation test" in text and "Holm" in text and "not distinguishable" in text
    assert "| default | local | 2 |" in text and "ties as half" in text
    for image in ("metrics.png", "significance.png", "win_rates.png", "loss_curves.png", "cost_quality.png"):
        assert (folder / image).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", image
    need_browser()
    with browser() as driver:
        facts = open_page(driver, folder / "report.html", folder / "report-screenshot.png")
    assert facts["images_loaded"] == facts["images"] >= 5 and facts["tables"] >= 4
    assert facts["resources"] == [] and facts["external"] == []
    assert [m for m in facts["console"] if m["level"] in ("SEVERE", "WARNING")] == []
    assert facts["cards"] == 2 + 4  # two judged prompts, four held-out documents
    print(f"screenshot: {folder / 'report-screenshot.png'}")
