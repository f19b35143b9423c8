"""`make test` on a GPU workstation stays on the CPU for the CPU tests (tests/conftest.py): CUDA is hidden before
torch is imported, in this process and every child, and the machine's launch variables are dropped; GPU tests are
marked and skipped with a printed reason where there is no CUDA, run where there is."""

from __future__ import annotations

import os

import pytest

from tests import conftest
from tests.conftest import MACHINE_VARS, run_cli


def test_cuda_is_hidden_here_and_in_children():
    import torch

    assert os.environ["CUDA_VISIBLE_DEVICES"] == "" and not torch.cuda.is_available()
    assert not set(MACHINE_VARS) & set(os.environ)
    proc = run_cli("resolver.show", "qwen25-3b-instruct-brie")
    assert proc.returncode == 0 and proc.stdout.startswith("# qwen25-3b-instruct-brie for cpu")


def test_gpu_tests_get_the_machines_visibility_back(monkeypatch):
    monkeypatch.setattr(conftest, "REAL_CUDA_VISIBLE", "0,1")
    assert conftest.gpu_env()["CUDA_VISIBLE_DEVICES"] == "0,1"
    monkeypatch.setattr(conftest, "REAL_CUDA_VISIBLE", None)
    assert "CUDA_VISIBLE_DEVICES" not in conftest.gpu_env()  # every device, as the machine has it


def test_gpu_tests_are_skipped_with_a_reason_only_without_cuda():
    reason = conftest.gpu_skip_reason(lambda: (False, "torch sees 0 CUDA device(s) (CUDA_VISIBLE_DEVICES=all)"))
    assert reason == "GPU test: no CUDA device here (torch sees 0 CUDA device(s) (CUDA_VISIBLE_DEVICES=all))"
    assert conftest.gpu_skip_reason(lambda: (True, "torch sees 1 CUDA device(s)")) is None


def test_the_gpu_marker_is_registered(pytestconfig):
    assert any(m.startswith("gpu:") for m in pytestconfig.getini("markers"))


@pytest.mark.gpu
def test_a_gpu_marked_test_runs_only_where_cuda_is():
    import json
    import subprocess
    import sys

    proc = subprocess.run(
        [sys.executable, "-c", conftest.CUDA_PROBE], env=conftest.gpu_env(), capture_output=True, text=True
    )
    assert json.loads(proc.stdout.strip().splitlines()[-1])[0] is True


def test_the_longest_files_are_handed_out_first():
    """The Makefile turns xdist's reordering off and the collection puts the measured longest files first: each
    named file exists (a renamed one would silently fall back to the end) and the order is theirs, stable."""
    from types import SimpleNamespace

    from core.paths import REPO
    from tests.conftest import LONGEST_FIRST, _longest_first

    assert all((REPO / "tests" / name).is_file() for name in LONGEST_FIRST)
    assert "--no-loadscope-reorder" in (REPO / "Makefile").read_text()
    items = [SimpleNamespace(path=REPO / "tests" / n) for n in ("a.py", LONGEST_FIRST[1], "b.py", LONGEST_FIRST[0])]
    _longest_first(items)
    assert [i.path.name for i in items] == [LONGEST_FIRST[0], LONGEST_FIRST[1], "a.py", "b.py"]
