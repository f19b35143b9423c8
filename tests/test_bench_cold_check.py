"""`make bench`'s cold preflight time is `make check RECIPE=...` as a user types it (bench/pipeline.py), and counts
only when the checks ran: a module that exits 0 having checked nothing, or a check that fails, is no measurement."""

from __future__ import annotations

import pytest

from bench import pipeline
from core.paths import REPO


def test_the_cold_check_runs_make_checks_own_entry_point(tmp_path):
    seconds, summary = pipeline.cold_check("smollm2-135m-cpu", tmp_path)
    assert summary.startswith("OK: 0 errors") and seconds > 0


def test_a_cold_check_that_fails_is_not_a_time(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(f"extends: [{REPO}/recipes/smollm2-135m-cpu.yaml]\nlora_dropuot: 0.1\n")
    with pytest.raises(pipeline.NotDone, match="did not pass"):
        pipeline.cold_check(str(bad), tmp_path)
