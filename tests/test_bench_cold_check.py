"""`make bench`'s cold preflight time is `make check` as a user runs it (`python -m launch.preflight`), and counts only
when the checks ran: a module that exits 0 having checked nothing, or a check that fails, is no measurement."""

from __future__ import annotations

import pytest

from bench import cpu
from core.paths import REPO


def test_the_cold_check_runs_make_checks_own_entry_point(tmp_path):
    seconds, summary = cpu.cold_check("smollm2-135m-cpu", tmp_path)
    assert summary.startswith("OK: 0 errors") and seconds > 0


def test_a_cold_check_that_fails_is_not_a_time(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(f"extends: [{REPO}/recipes/smollm2-135m-cpu.yaml]\nlora_dropuot: 0.1\n")
    with pytest.raises(RuntimeError, match="did not pass"):
        cpu.cold_check(str(bad), tmp_path)
