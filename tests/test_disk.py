"""Disk: the preflight refuses a run whose checkpoints x save_total_limit + final weights exceed the free space
under OUTPUTS, with the numbers, and warns when the merged model and GGUF files of later steps would not fit; a disk that fills up mid-run ends in a clear message and a run that
resumes. ENOSPC is injected where a full disk hits the HF Trainer (torch.save of a checkpoint's optimizer
state), through a sitecustomize on PYTHONPATH, so the real launcher, axolotl and trainer handle it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections import namedtuple

import pytest

from core import manifest, settings
from core.paths import REPO
from core.rundir import LATEST
from launch.checkpoints import is_complete
from launch.preflight.checks import run_checks
from tests.conftest import OFFLINE

RECIPE = "smollm2-135m-cpu"
INJECT = """import os
_step = os.environ.get("AFFINAGE_TEST_ENOSPC_AT")
if _step:
    import errno
    import torch
    _save = torch.save
    def _full_disk_save(obj, f, *args, **kwargs):
        if f"checkpoint-{_step}" in str(f):
            raise OSError(errno.ENOSPC, "No space left on device", str(f))
        return _save(obj, f, *args, **kwargs)
    torch.save = _full_disk_save
"""


def disk_findings(monkeypatch, free: int):
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage(10**12, 10**12 - free, free))
    _, findings = run_checks(RECIPE, settings.load())
    return [f for f in findings if f.check == "disk"]


def test_preflight_refuses_what_training_cannot_write(outputs, monkeypatch):
    [disk] = [f for f in disk_findings(monkeypatch, 2 * 10**7) if f.level == "error"]
    assert "training needs 0.13 GB under OUTPUTS" in disk.message and "0.0 GB free" in disk.message
    for part in ("checkpoints (4 kept at peak)", "final weights"):
        assert part in disk.message
    assert "merged model" not in disk.message
    assert disk.where.key == "save_total_limit" and "OUTPUTS" in disk.hint


def test_room_for_training_but_not_for_the_exports_warns(outputs, monkeypatch):
    """make train is not refused for what make merge / make gguf write later (an 8B on a 64 GB disk)."""
    found = disk_findings(monkeypatch, 5 * 10**8)
    assert [f.level for f in found] == ["ok", "warning"], found
    ok, warning = found
    assert "training needs 0.13 GB" in ok.message
    assert "make merge and make gguf need 0.76 GB more" in warning.message
    for part in ("merged model", "GGUF f16 + Q8_0 + Q4_K_M"):
        assert part in warning.message
    assert [f.level for f in disk_findings(monkeypatch, 10**10)] == ["ok"]


def tiny_run_args(tiny) -> str:
    """A 6-step run of the default recipe on a tiny Llama, saving every 2 steps."""
    return (
        f"--base_model={tiny} --max_steps=6 --save_steps=2 --sequence_len=256 --micro_batch_size=1 "
        "--gradient_accumulation_steps=1 --test_datasets=null --eval_steps=null --eval_strategy=no "
        "--logging_steps=1 --warmup_steps=0 --warmup_ratio=null --save_total_limit=5"
    )


def full_disk_at(step: int, folder) -> dict[str, str]:
    """Env that makes the trainer's torch.save of checkpoint-<step> fail with ENOSPC."""
    folder.mkdir(exist_ok=True)
    (folder / "sitecustomize.py").write_text(INJECT)
    return {"PYTHONPATH": f"{folder}{os.pathsep}{REPO}", "AFFINAGE_TEST_ENOSPC_AT": str(step)}


@pytest.mark.slow
def test_disk_full_mid_run_ends_clearly_and_resumes(tiny_model, tmp_path):
    outputs = tmp_path / "out"
    env = {**os.environ, **OFFLINE, "OUTPUTS": str(outputs), **full_disk_at(4, tmp_path / "inject")}
    cmd = [sys.executable, "-m", "launch.train", RECIPE, f"--args={tiny_run_args(tiny_model('llama'))}"]
    full = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=900)
    assert full.returncode == 2, full.stdout[-3000:] + full.stderr[-3000:]
    [run] = [p for p in (outputs / "runs" / RECIPE).iterdir() if p.is_dir()]
    assert "the disk filled up during training (No space left on device)" in full.stderr
    assert "last complete checkpoint is checkpoint-2" in full.stderr and f"make train RUN={run}" in full.stderr
    assert "Traceback" not in full.stderr.split("error:", 1)[1]
    assert is_complete(run / "output" / "checkpoint-2") and not is_complete(run / "output" / "checkpoint-4")
    assert manifest.read(run).status == "failed" and not (run.parent / LATEST).exists()

    env.pop("AFFINAGE_TEST_ENOSPC_AT")  # space was freed
    resumed = subprocess.run([*cmd, f"--run={run}"], cwd=REPO, env=env, capture_output=True, text=True, timeout=900)
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]
    m = manifest.read(run)
    assert m.status == "completed" and m.resumes[-1].step == 2 and m.train.summary.global_step == 6
    assert (run.parent / LATEST).read_text().strip() == run.name
