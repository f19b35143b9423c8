"""Run directories and their manifests: the only thing pipeline steps hand to each other.

Layout: outputs/runs/<recipe>/<UTC timestamp>/ with manifest.json, config.yaml, logs/, output/.
outputs/runs/<recipe>/LATEST names the last *completed* run. Nothing here scans for checkpoints:
later steps read paths from the manifest.
"""
from __future__ import annotations

import hashlib
import json
import os
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from launch import atomic
from launch.errors import UserError, Where
from launch.paths import outputs_dir

MANIFEST = "manifest.json"
LATEST = "LATEST"


def utc_now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def recipe_runs_dir(recipe: str) -> Path:
    return outputs_dir() / "runs" / recipe


def new_run_dir(recipe: str) -> Path:
    """Create outputs/runs/<recipe>/<UTC timestamp>/ (suffixing -2, -3 within the same second)."""
    base = recipe_runs_dir(recipe)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    for n in range(1, 1000):
        path = base / (stamp if n == 1 else f"{stamp}-{n}")
        try:
            path.mkdir(parents=True)
            return path
        except FileExistsError:
            continue
    raise RuntimeError(f"could not create a run directory under {base}")


def read_manifest(run: Path) -> dict[str, Any]:
    path = Path(run) / MANIFEST
    if not path.is_file():
        raise UserError("not a run directory (no manifest.json)", Where(run),
                        "pass RUN=outputs/runs/<recipe>/<timestamp> or RECIPE=<name>")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise UserError(f"manifest is not valid JSON: {exc.msg}", Where(path, exc.lineno)) from None


def write_manifest(run: Path, manifest: dict[str, Any]) -> None:
    atomic.write_json(Path(run) / MANIFEST, manifest)


def update_manifest(run: Path, section: str, value: Any) -> dict[str, Any]:
    """Set one top-level section (e.g. 'merge', 'gguf', 'eval') and rewrite atomically."""
    manifest = read_manifest(run)
    manifest[section] = value
    write_manifest(run, manifest)
    return manifest


def mark_latest(run: Path) -> None:
    """Point outputs/runs/<recipe>/LATEST at this run (call only once the run is complete)."""
    run = Path(run).resolve()
    atomic.write_text(run.parent / LATEST, run.name + "\n")


def latest_run(recipe: str) -> Path:
    pointer = recipe_runs_dir(recipe) / LATEST
    if not pointer.is_file():
        raise UserError(f"recipe '{recipe}' has no completed run yet", Where(pointer),
                        f"train it first: make train RECIPE={recipe}")
    run = pointer.parent / pointer.read_text().strip()
    if not (run / MANIFEST).is_file():
        raise UserError(f"LATEST names '{run.name}', which has no manifest", Where(pointer),
                        "the run was removed; train again or pass RUN= explicitly")
    return run


def resolve_run(run: str | None = None, recipe: str | None = None) -> Path:
    """RUN= wins; else the LATEST completed run of RECIPE=. Never a guessed checkpoint."""
    if run:
        path = Path(run).expanduser().resolve()
        read_manifest(path)  # validates it is a run dir
        return path
    if recipe:
        return latest_run(recipe)
    raise UserError("no run given", hint="pass RUN=<run dir> or RECIPE=<name> (its LATEST run)")


def final_adapter(run: Path) -> Path:
    """The adapter/model folder that training recorded as final, checked to exist and match its hash."""
    manifest = read_manifest(run)
    final = manifest.get("final_checkpoint") or {}
    if manifest.get("status") != "completed" or not final.get("path"):
        raise UserError(f"run did not complete (status: {manifest.get('status')})", Where(Path(run) / MANIFEST),
                        "resume or re-run training; no checkpoint is guessed")
    path = Path(run) / final["path"]
    weights = path / final["file"]
    if not weights.is_file():
        raise UserError(f"final checkpoint file is missing: {weights}", Where(Path(run) / MANIFEST, key="final_checkpoint"))
    if sha256_file(weights) != final["sha256"]:
        raise UserError(f"final checkpoint changed since training (sha256 mismatch): {weights}",
                        Where(Path(run) / MANIFEST, key="final_checkpoint.sha256"))
    return path


def completed_runs() -> list[Path]:
    """Every completed run under outputs/runs (by its manifest), oldest first."""
    found = []
    for manifest in sorted((outputs_dir() / "runs").glob(f"*/*/{MANIFEST}")):
        try:
            if json.loads(manifest.read_text()).get("status") == "completed":
                found.append(manifest.parent)
        except json.JSONDecodeError:
            continue
    return found


def relpath(path: Path, run: Path) -> str:
    return os.path.relpath(Path(path).resolve(), Path(run).resolve())
