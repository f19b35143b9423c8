"""A run whose step fails is tried again once, then reported, and the study still writes its report: here the
run's override points training at a dataset that does not exist, so launch.train's preflight refuses it (fast,
no training), twice."""

from __future__ import annotations

import json

from tests.conftest import run_cli

STUDY = """name: failing
runs:
  - {name: broken, recipe: smollm2-135m-cpu, overrides: {datasets.0.path: data/nope.jsonl}}
"""


def test_a_failed_run_is_tried_again_once_then_reported(tmp_path, outputs):
    study = tmp_path / "failing.yaml"
    study.write_text(STUDY)
    proc = run_cli("eval.study.run", str(study), env={"OUTPUTS": str(outputs)}, timeout=900)
    said = proc.stdout + proc.stderr
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, said[-3000:]
    assert "1 of 1 run(s) did not finish" in proc.stderr and "broken: " in proc.stderr
    assert "broken: failed (train.log: trying again)" in said and "broken: failed (train.log: reported)" in said
    root = outputs / "studies" / "failing"
    log = (root / "logs" / "broken" / "train.log").read_text()
    assert log.count("$ ") == 2 and "dataset file not found" in log  # two attempts, the reason kept
    st = json.loads((root / "state.json").read_text())
    assert st["runs"]["broken"]["attempts"] == 2 and st["runs"]["broken"]["status"] == "failed"
    text = (root / "report" / "report.md").read_text()
    assert "0 of 1 runs finished; 1 failed." in text and "| broken | smollm2-135m-cpu |" in text
