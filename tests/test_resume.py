"""Kill-and-resume of the default recipe (single process): a second trainer of the live run is refused, then SIGKILL
the whole `make train` process tree after a checkpoint, plant a half-written checkpoint, resume. Checked: the
resumed process starts at the last complete checkpoint's global step and trains only the remaining steps; the loss
history up to the checkpoint is kept exactly, and the whole curve equals an uninterrupted run's bit for bit. Why
exact equality is the right test: both runs start from the same adapter (launch/seed_plugin.py seeds before the
model is built; before it, each run drew its own LoRA A matrices and the curves parted after step 2 by ~0.1-0.2 %,
which a 0.2 % tolerance let through until a loaded machine went past it), the resumed process restores weights,
optimizer, scheduler, RNG state and data order from the checkpoint, and every CPU kernel here is deterministic for
a fixed thread count (both runs get OMP_NUM_THREADS=2). Any difference is therefore a resume bug, not noise."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from core import manifest, rundir, settings
from core.paths import REPO
from core.rundir import LATEST
from launch.checkpoints import is_complete, last_complete
from tests.conftest import OFFLINE

ARGS = "--max_steps=6 --save_steps=2 --eval_steps=null --eval_strategy=no --logging_steps=1 --save_total_limit=5"


def losses(run) -> dict[int, float]:
    state = json.loads((run / "output" / "checkpoint-6" / "trainer_state.json").read_text())
    return {h["step"]: h["loss"] for h in state["log_history"] if "loss" in h}


@pytest.mark.slow
def test_killed_run_resumes_from_its_last_complete_checkpoint(tmp_path):
    env = {**os.environ, **OFFLINE, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "2"}
    cmd = [sys.executable, "-m", "launch.train", "smollm2-135m-cpu", f"--args={ARGS}"]

    ref_env = {**env, "OUTPUTS": str(tmp_path / "reference")}
    assert subprocess.run(cmd, cwd=REPO, env=ref_env, capture_output=True, timeout=900).returncode == 0
    reference = next((tmp_path / "reference" / "runs" / "smollm2-135m-cpu").glob("2*"))

    env["OUTPUTS"] = str(tmp_path / "out")
    proc = subprocess.Popen(
        cmd, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    base = tmp_path / "out" / "runs" / "smollm2-135m-cpu"
    deadline = time.time() + 600
    while True:
        found = [c for c in base.glob("*/output/checkpoint-2") if is_complete(c)]
        if found or time.time() > deadline or proc.poll() is not None:
            break
        time.sleep(0.5)
    assert found, "no complete checkpoint-2 appeared"
    run = found[0].parent.parent
    # while it trains (frozen here, so it cannot finish meanwhile), a second trainer of the same run is refused
    os.killpg(proc.pid, signal.SIGSTOP)
    try:
        second = subprocess.run([*cmd, f"--run={run}"], cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the node is gone: launcher and axolotl alike
        proc.wait()
    assert second.returncode == 2 and f"the run {run} is in use by a live process" in second.stderr, second.stderr
    assert f"pid {proc.pid}" in second.stderr and "FORCE=1" in second.stderr
    assert (run / rundir.TRAIN_LOCK).is_file()  # left by the kill; its pid is gone, so it is stale
    assert manifest.read(run).status == "running" and not (base / LATEST).exists()
    killed_at = last_complete(run / "output")
    half = run / "output" / f"checkpoint-{int(killed_at.name.split('-')[1]) + 1}"
    half.mkdir()
    (half / "adapter_model.safetensors").write_bytes(b"partial")  # died mid-save: no trainer_state.json
    assert last_complete(run / "output") == killed_at

    resumed = subprocess.run(
        [sys.executable, "-m", "launch.train", "smollm2-135m-cpu", f"--args={ARGS}"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )  # same RECIPE: resumes by itself
    assert resumed.returncode == 0, resumed.stdout[-2000:] + resumed.stderr[-2000:]
    assert f"resuming the unfinished run {run}" in resumed.stdout
    assert f"taking over the run {run} from" in resumed.stdout and not (run / rundir.TRAIN_LOCK).exists()
    m = manifest.read(run)
    assert (
        m.status == "completed" and m.train.summary.global_step == 6 and (base / LATEST).read_text().strip() == run.name
    )
    assert [r.from_ for r in m.resumes] == [f"output/{killed_at.name}"]
    k = int(killed_at.name.split("-")[1])
    # the resumed process trained only the remaining steps (a restart from 0 would log all six)
    assert resumed.stdout.count("{'loss':") == 6 - k, resumed.stdout[-3000:]
    got, want = losses(run), losses(reference)
    assert sorted(got) == [1, 2, 3, 4, 5, 6]
    assert all(got[i] == want[i] for i in range(1, k + 1))  # history up to the checkpoint: kept as it was
    # after the resume: the same curve, bit for bit (see the docstring for why nothing less)
    assert got == want, (got, want)


def test_resume_refusals(outputs):
    from core.errors import UserError
    from core.manifest import RecipeRef, TrainSection
    from launch.resume import resume_config

    run = rundir.new_run_dir(settings.load().outputs, "smollm2-135m-cpu")
    (run / "output" / "checkpoint-2").mkdir(parents=True)
    recipe = RecipeRef(name="smollm2-135m-cpu")
    manifest.create(run, TrainSection(recipe=recipe, status="failed"))
    with pytest.raises(UserError, match="no complete checkpoint"):
        resume_config(run)
    manifest.create(run, TrainSection(recipe=recipe, status="completed"))
    with pytest.raises(UserError, match="already completed"):
        resume_config(run)
