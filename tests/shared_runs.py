"""Runs built once per test session and shared by every test that needs one, also across pytest-xdist workers.

A trained run costs a minute on a 2-core box, most of it start-up: the suite trains the embedded default once
(`default_run`, through `make train` as a user runs it), merges and converts it once (`default_built`, through
`make merge` and `make gguf`), and every test downstream reads those. A shared run is read-only: a test that writes
into a run (judging, evaluation, a push) works on `copy_run` of it, where the big model files are hard links (never
written in place: every writer replaces a file by rename) and everything else is a real copy.

`once` builds a value under a file lock in the session's shared temp folder (the parent of each xdist worker's
basetemp): the first worker builds, the others wait and read what it wrote.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from core import settings

LINKED = (".safetensors", ".gguf", ".bin", ".pt", ".pth")  # big, never rewritten in place


def shared_root(tmp_path_factory) -> Path:
    base = tmp_path_factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


def once(tmp_path_factory, name: str, build: Callable[[Path], dict[str, Any]]) -> dict[str, Any]:
    """build(folder) -> a JSON-able dict, run by one process of the session; every caller gets its result."""
    root = shared_root(tmp_path_factory)
    folder, done = root / f"shared-{name}", root / f"shared-{name}.json"
    with open(root / f"shared-{name}.lock", "a") as lock:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
        try:
            if done.is_file():
                return json.loads(done.read_text())
            shutil.rmtree(folder, ignore_errors=True)  # a failed attempt of another worker
            folder.mkdir(parents=True)
            value = build(folder)
            done.write_text(json.dumps(value))
            return value
        finally:
            fcntl.flock(lock.fileno(), fcntl.LOCK_UN)


def _copy(src: str, dst: str) -> None:
    if src.endswith(LINKED):
        os.link(src, dst)
    else:
        shutil.copy2(src, dst)


def copy_run(src: Path, outputs: Path) -> Path:
    """A writable copy of run `src` under `outputs`, at the same runs/<recipe>/<stamp> place."""
    dst = outputs / "runs" / src.parent.name / src.name
    dst.parent.mkdir(parents=True, exist_ok=True)
    shutil.copytree(src, dst, copy_function=_copy, symlinks=True)
    return dst


def base_f16(tmp_path_factory) -> dict[str, Any]:
    """The default base model's f16 GGUF (tools/export/base_gguf.py), converted and parity-checked once per session
    into a shared cache folder: {"cache", "path", "built", "parity"}. Read-only: a test points AFFINAGE_CACHE at
    cache_copy() of it."""
    from tools.export import base_gguf
    from tools.tiny_models import smollm2_dir

    def build(folder: Path) -> dict[str, Any]:
        f16 = base_gguf.cached_f16(smollm2_dir(settings.load().cache), folder, log=lambda *_: None)
        return {"cache": str(folder), "path": str(f16.path), "built": f16.built, "parity": f16.parity}

    return once(tmp_path_factory, "base-f16", build)


def cache_copy(shared: dict[str, Any], to: Path) -> Path:
    """A writable copy of base_f16's cache folder (the GGUF hard-linked, as copy_run links a run's model files)."""
    shutil.copytree(shared["cache"], to, copy_function=_copy)
    return to
