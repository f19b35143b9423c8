"""Nothing done is lost to a crash or a second command: a folder replaced by atomic.folder is complete (old or new)
whatever step a kill lands on; a corrupt study state.json is one error naming it and its last good copy, never a
silent fresh start that forgets pods and spending; and one `make study` of a study runs at a time (a second is
refused naming the first; the lock of a killed one is taken over)."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys

import pytest

from core import atomic, settings
from core.errors import UserError
from core.paths import REPO
from eval.study import report, state
from tests.conftest import run_cli
from tests.study_fixtures import crafted_study

# replaces `final` with atomic.folder, but dies (as SIGKILL would: no clean-up) right before its k-th
# rename or delete; prints "finished" when k is past the last one
CRASH_AT = """
import os, shutil, sys
from pathlib import Path
from core import atomic
final, k, calls = Path(sys.argv[1]), int(sys.argv[2]), [0]
def dies_at_k(fn):
    def step(*args, **kwargs):
        calls[0] += 1
        if calls[0] == k:
            os._exit(9)
        return fn(*args, **kwargs)
    return step
os.replace, shutil.rmtree = dies_at_k(os.replace), dies_at_k(shutil.rmtree)
with atomic.folder(final) as tmp:
    (tmp / "model.safetensors").write_text("new")
print("finished")
"""


def test_a_kill_at_any_step_of_a_folder_swap_leaves_a_complete_folder(tmp_path):
    final = tmp_path / "merged"
    for k in range(1, 20):
        for leftover in tmp_path.iterdir():
            shutil.rmtree(leftover)
        final.mkdir()
        (final / "model.safetensors").write_text("old")
        proc = subprocess.run(
            [sys.executable, "-c", CRASH_AT, str(final), str(k)],
            cwd=REPO,
            env={**os.environ, "PYTHONPATH": str(REPO)},
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert proc.returncode in (0, 9), proc.stderr
        with pytest.raises(RuntimeError), atomic.folder(final):  # the next start, given up at once
            raise RuntimeError
        assert (final / "model.safetensors").read_text() in ("old", "new"), f"killed before step {k}"
        assert not [p.name for p in tmp_path.iterdir() if p != final], f"killed before step {k}"
        if "finished" in proc.stdout:
            assert (final / "model.safetensors").read_text() == "new"
            break
    else:
        pytest.fail("the swap never finished")
    assert k > 2  # the kill landed between the steps of the swap, not only before it


def test_a_corrupt_state_is_an_error_naming_it_and_the_last_good_copy_is_kept(tmp_path, outputs):
    study_file = crafted_study(tmp_path, outputs)
    _, _, _, paths = report.load(str(study_file), settings.load())
    first = {"runs": {"strong-seed1": {"pods": [{"id": "p1", "spent_usd": 1.5, "ended": True}]}}}
    state.write_state(paths, first)
    state.write_state(paths, {"runs": {**first["runs"], "weak-seed1": {"attempts": 1}}})
    assert json.loads(paths.state_backup.read_text()) == first  # the state it replaced, kept
    broken = paths.state_file.read_text()[:40]  # cut short, as a disk error would
    paths.state_file.write_text(broken)
    with pytest.raises(UserError) as err:
        state.read_state(paths)
    text = str(err.value)
    assert str(paths.state_file) in text and "not valid JSON" in text and str(paths.state_backup) in text

    for module in ("eval.study.run", "eval.study.report"):  # make study and make study-report
        proc = run_cli(module, str(study_file), env={"OUTPUTS": str(outputs)}, timeout=600)
        said = proc.stdout + proc.stderr
        assert proc.returncode == 2 and "Traceback" not in said, said[-3000:]
        assert f"{paths.state_file}: the study's state is corrupt: not valid JSON" in proc.stderr, said[-3000:]
        assert f"cp {paths.state_backup} {paths.state_file}" in proc.stderr
        assert paths.state_file.read_text() == broken and json.loads(paths.state_backup.read_text()) == first

    paths.state_file.write_text('{"pods": []}')  # valid JSON, but not a study's state
    with pytest.raises(UserError, match="the study's state is corrupt: it holds no 'runs'"):
        state.read_state(paths)


def test_a_second_make_study_of_the_same_study_is_refused_naming_the_first(tmp_path, outputs):
    study_file = crafted_study(tmp_path, outputs)
    _, _, _, paths = report.load(str(study_file), settings.load())
    with state.hold(paths, "crafted"):  # the first `make study` (this process) is still running
        proc = run_cli("eval.study.run", str(study_file), env={"OUTPUTS": str(outputs)}, timeout=600)
    said = proc.stdout + proc.stderr
    assert proc.returncode == 2 and "Traceback" not in said, said[-3000:]
    holder = f"pid {os.getpid()} on {socket.gethostname()} since "
    assert f"study crafted is already running ({holder}" in proc.stderr, said[-3000:]
    assert str(paths.lock_file) in proc.stderr and not paths.report.exists()  # refused before any work


def test_the_lock_of_a_killed_study_is_taken_over(tmp_path):
    paths = state.StudyPaths(tmp_path / "study")
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    paths.lock_file.parent.mkdir(parents=True)
    paths.lock_file.write_text(f"pid {dead.pid} on {socket.gethostname()} since 2026-01-01T00:00:00Z\n")
    with state.hold(paths, "s"):
        assert paths.lock_file.read_text().startswith(f"pid {os.getpid()} on {socket.gethostname()} since ")
        refused = pytest.raises(UserError, match=rf"study s is already running \(pid {os.getpid()} on ")
        with refused, state.hold(paths, "s"):  # a second holder, even in this process, is refused
            pass
    with state.hold(paths, "s"):  # released when the holder is done
        pass
