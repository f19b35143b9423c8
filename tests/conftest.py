"""Shared test set-up: offline, no telemetry, outputs in a temp dir, helpers to run our CLIs."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from launch.paths import REPO

OFFLINE = {"AXOLOTL_DO_NOT_TRACK": "1", "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
           "WANDB_MODE": "disabled", "TOKENIZERS_PARALLELISM": "false", "HF_HUB_DISABLE_PROGRESS_BARS": "1"}
os.environ.update(OFFLINE)
SHARED = REPO.parent / "shared"


@pytest.fixture
def outputs(tmp_path, monkeypatch) -> Path:
    path = tmp_path / "outputs"
    monkeypatch.setenv("OUTPUTS", str(path))
    return path


def run_cli(module: str, *args: str, env: dict | None = None, timeout: int = 900) -> subprocess.CompletedProcess:
    """Run `python -m module args` from the repo root, as the Makefile does."""
    full_env = {**os.environ, **OFFLINE, "PYTHONPATH": str(REPO), **(env or {})}
    return subprocess.run([sys.executable, "-m", module, *args], cwd=REPO, env=full_env, capture_output=True,
                          text=True, timeout=timeout)


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory):
    """tiny_model(family, tokenizer) -> folder of a tiny random model, built once per session."""
    from tests.tiny_models import build

    cache: dict[tuple[str, str], Path] = {}

    def get(family: str, tokenizer: str = "smollm2") -> Path:
        key = (family, tokenizer)
        if key not in cache:
            cache[key] = build(family, tmp_path_factory.mktemp(f"tiny-{family}-{tokenizer}"), tokenizer)
        return cache[key]

    return get


def write_recipe(path: Path, body: str, base: str = "smollm2-135m-cpu") -> Path:
    """A user recipe file outside recipes/: extends the repo's `base` recipe plus `body` on top."""
    path.write_text(f"extends: [{REPO / 'recipes' / (base + '.yaml')}]\n{body}")
    return path
