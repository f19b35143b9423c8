"""The run-directory contract: LATEST only names completed runs, and nothing is guessed."""

from __future__ import annotations

import os

import pytest

from core import atomic, manifest, rundir, settings
from core.errors import UserError
from core.hashing import sha256_file
from core.manifest import FinalCheckpoint, MergeSection, RecipeRef, TrainSection
from core.paths import REPO


def fake_run(recipe: str, status: str = "completed") -> tuple:
    run = rundir.new_run_dir(settings.load().outputs, recipe)
    out = run / "output"
    out.mkdir()
    (out / "adapter_model.safetensors").write_bytes(b"weights")
    manifest.create(
        run,
        TrainSection(
            recipe=RecipeRef(name=recipe),
            status=status,
            final_checkpoint=FinalCheckpoint(
                path="output", file="adapter_model.safetensors", sha256=sha256_file(out / "adapter_model.safetensors")
            ),
        ),
    )
    return run, out


def test_latest_and_resolution(outputs):
    with pytest.raises(UserError, match="no completed run"):
        rundir.resolve(settings.load().outputs, recipe="r")
    first, _ = fake_run("r")
    rundir.mark_latest(first)
    second, _ = fake_run("r", status="running")  # newer but unfinished: LATEST stays
    assert first != second and rundir.resolve(settings.load().outputs, recipe="r") == first
    assert rundir.resolve(settings.load().outputs, run=str(second)) == second
    with pytest.raises(UserError, match="did not complete"):
        rundir.final_adapter(second)


def test_final_adapter_is_checked_against_its_hash(outputs):
    run, out = fake_run("r")
    assert rundir.final_adapter(run) == out
    (out / "adapter_model.safetensors").write_bytes(b"tampered")
    with pytest.raises(UserError, match="sha256 mismatch"):
        rundir.final_adapter(run)


def test_not_a_run_dir(tmp_path):
    with pytest.raises(UserError, match="not a run directory"):
        rundir.resolve(settings.load().outputs, run=str(tmp_path))


def test_manifest_sections_are_added_atomically(outputs):
    run, _ = fake_run("r")
    manifest.write_sections(run, merge=MergeSection(path="merged"))
    assert manifest.read(run).merge == MergeSection(path="merged")
    assert not list(run.glob(".*tmp"))


def test_a_killed_folder_write_leaves_nothing_that_looks_done(tmp_path):
    """SIGKILL inside atomic.folder (as a killed merge or GGUF export): no final folder, and the next attempt
    finishes the job and clears the leftover."""
    import signal
    import subprocess
    import sys
    import time

    final = tmp_path / "merged"
    script = (
        f"from pathlib import Path\nimport time\nfrom core import atomic\n"
        f"with atomic.folder(Path({str(final)!r})) as tmp:\n"
        f"    (tmp / 'model.safetensors').write_bytes(b'x' * 1000)\n"
        f"    (tmp / 'started').write_text('')\n    time.sleep(60)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", script], cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)})
    deadline = time.time() + 60
    while not list(tmp_path.glob(".merged.*.partial/started")) and time.time() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not final.exists() and len(list(tmp_path.glob(".merged.*.partial"))) == 1
    with atomic.folder(final) as tmp:
        (tmp / "model.safetensors").write_bytes(b"y")
    assert (final / "model.safetensors").read_bytes() == b"y" and not list(tmp_path.glob(".merged.*"))
