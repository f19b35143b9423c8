"""One trainer per run (core/heartbeat.py, core/rundir.py): the trainer holds <run>/train.lock (host, pid, start)
and refreshes it with a heartbeat; a second `make train` of a run whose heartbeat is fresh is refused with the
run, the holder and FORCE=1; a holder that was killed leaves a stale lock, and the run resumes as before.
The holders here are real processes that only hold the lock (no training); tests/test_resume.py checks the same
refusal against a real training run, then kills it and resumes."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from core import heartbeat, manifest, rundir, settings
from core.errors import UserError
from core.manifest import RecipeRef, TrainSection
from core.paths import REPO
from tests.conftest import OFFLINE, run_cli

RECIPE = "smollm2-135m-cpu"
HOLDER = """import sys, time
from pathlib import Path
from core import rundir
held = rundir.hold_for_training(Path(sys.argv[1]))
print("held", flush=True)
time.sleep(3600)
"""


def unfinished_run() -> Path:
    run = rundir.new_run_dir(settings.load().outputs, RECIPE)
    (run / "output").mkdir()
    manifest.create(run, TrainSection(recipe=RecipeRef(name=RECIPE), status="running"))
    return run


def start_holder(run: Path) -> subprocess.Popen:
    env = {**os.environ, **OFFLINE, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(run)], cwd=REPO, env=env, stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
    return proc


def test_a_live_trainer_refuses_a_second_and_a_killed_one_resumes(outputs, capsys):
    run = unfinished_run()
    lock = run / rundir.TRAIN_LOCK
    holder = start_holder(run)
    try:
        before = (run / manifest.MANIFEST).read_bytes()
        second = run_cli("launch.train", f"--run={run}", env={"OUTPUTS": str(outputs)})
        said = second.stdout + second.stderr
        assert second.returncode == 2, said[-3000:]
        assert f"the run {run} is in use by a live process" in second.stderr, said[-3000:]
        assert f"host {socket.gethostname()}, pid {holder.pid}" in second.stderr
        assert f"FORCE=1 make train RUN={run}" in second.stderr and "Traceback" not in said
        assert "preflight" not in said  # refused at once, before any work
        assert (run / manifest.MANIFEST).read_bytes() == before and heartbeat.read(lock).pid == holder.pid
    finally:
        holder.kill()
        holder.wait()
    assert lock.is_file()  # a killed holder leaves its lock behind: stale, its pid is gone

    resumed = run_cli("launch.train", f"--run={run}", env={"OUTPUTS": str(outputs)})
    said = resumed.stdout + resumed.stderr
    # this run has no checkpoint to continue from: refused before it takes anything over (make train's cheap
    # refusals come first), the stale lock left as it was
    assert resumed.returncode == 2 and "the run has no complete checkpoint to resume from" in resumed.stderr
    assert "taking over" not in said and heartbeat.read(lock).pid == holder.pid
    held = rundir.hold_for_training(run)  # what make train does with a run it can resume
    out = capsys.readouterr().out
    assert f"note: taking over the run {run} from host {socket.gethostname()}, pid {holder.pid}" in out
    assert "no longer runs on this machine" in out
    held.release()
    assert not lock.exists()


def other_pod_lock(path: Path, age_s: float) -> None:
    """A lock written by a trainer on another machine (another pod on the same volume), last beat `age_s` ago."""
    holder = heartbeat.Holder(host="pod-b", machine="pod-b pid:[1]", pid=1, started="2026-01-01T00:00:00Z", token="b")
    path.write_text(holder.model_dump_json())
    then = time.time() - age_s
    os.utime(path, (then, then))


def test_another_pods_lock_holds_while_it_beats(tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    lock = run / rundir.TRAIN_LOCK
    other_pod_lock(lock, age_s=5)
    with pytest.raises(UserError) as err:
        rundir.hold_for_training(run)
    text = str(err.value)
    assert f"the run {run} is in use" in text and "host pod-b, pid 1" in text and "FORCE=1" in text
    with pytest.raises(UserError, match="RESUME=0 starts a new run beside it"):
        rundir.hold_for_training(run, auto=True)  # found by make train RECIPE=x: starting afresh is the way out

    other_pod_lock(lock, age_s=heartbeat.STALE_S + 60)  # the pod was killed: its heartbeat stopped
    held = rundir.hold_for_training(run)
    assert "taking over" in capsys.readouterr().out and heartbeat.read(lock).pid == os.getpid()
    held.release()
    assert not lock.exists()

    other_pod_lock(lock, age_s=5)
    forced = rundir.hold_for_training(run, force=True)  # FORCE=1: the user says that trainer is gone
    assert "forced" in capsys.readouterr().out and heartbeat.read(lock).token == forced.holder.token
    forced.release()


def wait_for(condition, what: str, limit_s: float = 120.0) -> None:
    deadline = time.monotonic() + limit_s
    while not condition():
        assert time.monotonic() < deadline, f"never happened: {what}"
        time.sleep(0.05)


def test_the_heartbeat_beats_and_a_forced_out_holder_lets_go(tmp_path):
    lock = tmp_path / "train.lock"
    first = heartbeat.acquire(lock, "the run", "hint", beat_s=0.05)
    os.utime(lock, (0, 0))  # as if it had not beaten for decades
    assert heartbeat.age_s(lock) > heartbeat.STALE_S
    wait_for(lambda: heartbeat.age_s(lock) < heartbeat.STALE_S, "a heartbeat")

    second = heartbeat.acquire(lock, "the run", "hint", force=True, beat_s=0.05)
    wait_for(lambda: first.lost, "the first holder seeing it was taken over")
    first.release()  # leaves the new holder's lock alone
    assert heartbeat.read(lock).token == second.holder.token
    second.release()
    assert not lock.exists()
