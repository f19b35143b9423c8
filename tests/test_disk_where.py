"""The disk check applies where training happens: a GPU recipe checked on a machine without CUDA (a laptop) reports
the volume the plan will ask RunPod for instead of failing on the laptop's disk; on a GPU machine, or for a run
that trains here on CPU, the local free space decides."""

from __future__ import annotations

import shutil
from collections import namedtuple

import pytest

from core import settings
from launch.preflight import disk
from launch.preflight.checks import run_checks
from launch.preflight.plan import make_plan
from resolver import profiles

RECIPE = "gemma3-27b"  # 179 GB of checkpoints, merged model and GGUF files


@pytest.fixture
def small_disk(monkeypatch):
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage(2 * 10**11, 2 * 10**11 - 10**10, 10**10))


def disk_findings(findings):
    return [f for f in findings if f.check == "disk"]


def test_a_gpu_recipe_checked_on_a_laptop_reports_the_volume(outputs, small_disk):
    assert not profiles.cuda_available(settings.load())  # the tests hide CUDA: this process is the laptop
    _, findings = run_checks(RECIPE, settings.load())
    [finding] = disk_findings(findings)
    plan = make_plan(RECIPE, settings.load())
    assert finding.level == "ok" and "trains on a GPU machine, not here" in finding.message
    assert f"asks RunPod for a {plan.volume_gb} GB volume" in finding.message and plan.volume_gb >= 180
    assert f"needs {plan.disk.total:.1f} GB there" in finding.message


def test_on_the_gpu_machine_the_local_disk_decides(outputs, small_disk, monkeypatch):
    monkeypatch.setattr(profiles, "cuda_available", lambda s: True)
    _, findings = run_checks(RECIPE, settings.load())
    errors = [f for f in disk_findings(findings) if f.level == "error"]
    assert errors and "under OUTPUTS" in errors[0].message and "10.0 GB free" in errors[0].message
    assert errors[0].where.key == "save_total_limit"


def test_a_run_that_trains_here_on_cpu_checks_this_disk(outputs, small_disk, monkeypatch):
    monkeypatch.setenv("DEVICE", "cpu")  # the GPU recipe, forced onto this machine's CPU
    _, findings = run_checks(RECIPE, settings.load())
    assert any(f.level == "error" and "under OUTPUTS" in f.message for f in disk_findings(findings))


def test_the_choice_is_explicit_when_asked(outputs, small_disk):
    r, _ = run_checks(RECIPE, settings.load())
    assert [f.level for f in disk.check_disk(r, here=True)][0] == "error"
    assert [f.level for f in disk.check_disk(r, here=False)] == ["ok"]
