"""The supported stack (core/stack.py): this venv is inside it, and an image outside it is refused with what was
found and what is needed, by the same script the pod bootstrap runs (standard library only, no torch import)."""

from __future__ import annotations

import importlib.metadata as md
import subprocess

import pytest

from core import settings, stack
from core.paths import REPO
from tests.wheels import build_wheel, make_venv, pip


def test_numbers_read_release_versions():
    assert stack.numbers("2.14.0+cu130") == (2, 14, 0)
    assert stack.numbers("0.21.0") == (0, 21, 0) and stack.numbers("1.2.0rc1") == (1, 2, 0)
    assert stack.numbers("3.12.1") < stack.numbers("3.13")


def test_this_venv_is_inside_the_supported_range():
    assert stack.problems() == []
    said = stack.versions()
    for name in stack.REPORTED:
        assert f"{name} {stack.installed(name)}" in said and "(not installed)" not in said


def test_make_check_names_the_versions_it_checked_against():
    proc = subprocess.run(
        ["make", "--no-print-directory", "check", "RECIPE=smollm2-135m-cpu"], cwd=REPO, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert f"[ok] stack: checked against {stack.versions()}" in proc.stdout
    assert f"axolotl {md.version('axolotl')}, transformers {md.version('transformers')}" in proc.stdout


def test_an_axolotl_outside_the_range_is_one_cheap_error(monkeypatch):
    from launch.preflight.checks import preflight

    found = md.version("axolotl")
    monkeypatch.setitem(stack.SUPPORTED, "axolotl", ("0.90", "0.91"))
    done = preflight("smollm2-135m-cpu", settings.load())
    errors = [f for f in done.findings if f.level == "error"]
    assert done.stopped and [(f.check, f.message) for f in errors] == [
        ("stack", f"axolotl {found} is outside the supported range axolotl >=0.90,<0.91")
    ]


@pytest.fixture(scope="module")
def image_venv(tmp_path_factory):
    """A Python 3.12 env with stand-in torch/axolotl distributions of chosen versions (no index reached)."""
    root = tmp_path_factory.mktemp("stack")
    wheels = root / "wheels"
    for name, version in (("axolotl", "0.18.0"), ("axolotl", "0.20.0"), ("torch", "2.14.0"), ("torch", "2.10.0")):
        build_wheel(wheels, name, version)
    return make_venv(root / "venv"), wheels


def check(py, *args):
    return subprocess.run(
        [str(py), str(REPO / "core" / "stack.py"), *args], capture_output=True, text=True, timeout=120
    )


@pytest.mark.parametrize(
    "axolotl, torch, problem",
    [
        ("0.18.0", "2.14.0", "axolotl 0.18.0 is outside the supported range axolotl >=0.19.0,<0.22"),
        ("0.20.0", "2.10.0", "torch 2.10.0 is outside the supported range torch >=2.11,<2.15"),
        (None, "2.14.0", "axolotl is not installed (supported: axolotl >=0.19.0,<0.22)"),
    ],
)
def test_an_image_outside_the_range_is_refused_naming_what_it_holds(image_venv, axolotl, torch, problem):
    py, wheels = image_venv
    pip(py, wheels, "uninstall", "-q", "-y", "axolotl", "torch", check=False)
    pip(py, wheels, "install", "-q", "--no-deps", f"torch=={torch}", *([f"axolotl=={axolotl}"] if axolotl else []))
    proc = check(py, "--gpu")
    assert proc.returncode == 2 and problem in proc.stderr, proc.stderr
    assert "needed: python >=3.12,<3.13, axolotl >=0.19.0,<0.22, torch >=2.11,<2.15" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_an_image_in_range_without_a_gpu_is_refused_only_when_a_gpu_is_asked_for(image_venv):
    py, wheels = image_venv
    pip(py, wheels, "uninstall", "-q", "-y", "axolotl", "torch", check=False)
    pip(py, wheels, "install", "-q", "--no-deps", "torch==2.14.0", "axolotl==0.20.0")
    assert check(py).returncode == 0  # a CPU pod (DEVICE=cpu): versions only
    proc = check(py, "--gpu")  # the stand-in torch has no CUDA
    assert proc.returncode == 2 and "torch 2.14.0" in proc.stderr and "Traceback" not in proc.stderr
