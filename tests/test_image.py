"""Pods start from images that exist: the default image is axolotl's own cloud image for the axolotl this checkout
runs, tagged by axolotl's published scheme (launch/cloud/image.py), and every place that names it agrees.

The expected tag is never a constant of this test: it is built from the axolotl version the lock pins and the one
the venv really holds (its own metadata, as PyPI shipped it), through the scheme."""

from __future__ import annotations

import importlib.metadata as md
import re
import tomllib

import pytest

from core.paths import REPO
from launch.cloud import image
from launch.cloud.runpod.spec import load_project


def lock_version(name: str) -> str:
    found = re.search(rf"^{re.escape(name)}==(\S+)$", (REPO / "constraints.txt").read_text(), re.M | re.I)
    assert found, f"{name} is not pinned in constraints.txt"
    return found.group(1)


def test_the_default_image_is_axolotls_release_tag_for_the_lock():
    version = lock_version("axolotl")
    assert md.version("axolotl") == version  # the venv holds what the lock says
    expected = image.official(version)
    assert image.parse(expected) == {"version": version, "python": None, "cuda": None, "torch": None}
    assert load_project().project.base_image == expected
    raw = tomllib.loads((REPO / "runpod.toml").read_text())
    assert raw["project"]["base_image"] == expected
    assert raw["runtime"]["python_version"] == "3.12"
    docker = (REPO / "Dockerfile").read_text()
    assert re.search(r"^ARG AXOLOTL_IMAGE=(\S+)$", docker, re.M).group(1) == expected
    assert re.search(r"^FROM \$\{AXOLOTL_IMAGE\}$", docker, re.M)


@pytest.mark.parametrize(
    "tag, fits",
    [
        ("0.21.0", True),
        ("0.21.0-latest", True),
        ("0.21.0-py3.12-cu130-2.14.0", True),
        ("0.19.0-py3.11-cu128-2.13.0", False),  # the old default: no Python 3.11 / cu128 image after 0.17.0
        ("0.17.0-py3.11-cu128-2.9.1", True),
        ("0.21", False),
        ("latest", False),
        ("0.21.0-py3.12-cu130", False),
    ],
)
def test_the_scheme_knows_which_tags_axolotl_publishes(tag, fits):
    assert (image.parse(f"{image.REPOSITORY}:{tag}") is not None) is fits
    assert image.parse(f"someone/else:{tag}") is None


def test_the_bootstrap_looks_for_the_images_python_where_axolotls_image_keeps_it():
    boot = (REPO / "launch" / "cloud" / "bootstrap.sh").read_text()
    candidates = re.search(r"for candidate in (.*); do", boot).group(1).split()
    assert candidates[0] == image.IMAGE_PYTHON
    assert "core/stack.py $gpu_check" in boot  # the image is checked before set-up and any download
    assert boot.index("core/stack.py $gpu_check") < boot.index("SETUP_MODE=image bash launch/setup.sh")
