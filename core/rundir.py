"""Run directories: the only thing pipeline steps hand to each other.

Layout: OUTPUTS/runs/<recipe>/<UTC timestamp>/ with manifest.json, config.yaml, logs/, output/.
OUTPUTS/runs/<recipe>/LATEST names the last *completed* run. Nothing here scans for checkpoints: later steps
take RUN= or RECIPE= (its LATEST) through `resolve`, and read paths from the manifest.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

from core import atomic, heartbeat, manifest
from core.errors import UserError, Where
from core.hashing import sha256_file
from core.settings import Settings

LATEST = "LATEST"
MANIFEST = manifest.MANIFEST
TRAIN_LOCK = "train.lock"  # the live trainer of a run: host, pid, start; its heartbeat is the file's mtime


def utc_now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


RECIPE_FILE_SUFFIXES = (".yaml", ".yml")


def is_recipe_file(recipe: str) -> bool:
    """A recipe file (by its .yaml/.yml ending), not a registered name: a name may hold dots (qwen2.5-05b), so
    any other suffix is part of the name."""
    return Path(recipe).suffix.lower() in RECIPE_FILE_SUFFIXES


def recipe_name(recipe: str) -> str:
    """The name runs of `recipe` are filed under: a registered name as it is, or a recipe/config file's name
    without its .yaml ending (never a bare stem: it would cut a dotted name at its first dot)."""
    return Path(recipe).stem if is_recipe_file(recipe) else recipe


def recipe_runs_dir(outputs: Path, recipe: str) -> Path:
    return Path(outputs) / "runs" / recipe_name(recipe)


def new_run_dir(outputs: Path, recipe: str) -> Path:
    """Create OUTPUTS/runs/<recipe>/<UTC timestamp>/ (suffixing -2, -3 within the same second)."""
    base = recipe_runs_dir(outputs, recipe)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    for n in range(1, 1000):
        path = base / (stamp if n == 1 else f"{stamp}-{n}")
        try:
            path.mkdir(parents=True)
            return path
        except FileExistsError:
            continue
    raise RuntimeError(f"could not create a run directory under {base}")


def mark_latest(run: Path) -> None:
    """Point OUTPUTS/runs/<recipe>/LATEST at this run (call only once the run is complete)."""
    run = Path(run).resolve()
    atomic.write_text(run.parent / LATEST, run.name + "\n")


def latest_run(outputs: Path, recipe: str) -> Path:
    pointer = recipe_runs_dir(outputs, recipe) / LATEST
    name = recipe_name(recipe)
    if not pointer.is_file():
        raise UserError(
            f"recipe '{name}' has no completed run yet", Where(pointer), f"train it first: make train RECIPE={recipe}"
        )
    run = pointer.parent / pointer.read_text().strip()
    if not (run / MANIFEST).is_file():
        raise UserError(
            f"LATEST names '{run.name}', which has no manifest",
            Where(pointer),
            "the run was removed; train again or pass RUN= explicitly",
        )
    return run


def resolve(outputs: Path, run: str | None = None, recipe: str | None = None) -> Path:
    """The one RUN=/RECIPE= resolver of every step after training: RUN= wins; else the LATEST completed run
    of RECIPE=. Never a guessed checkpoint."""
    if run:
        path = Path(run).expanduser().resolve()
        manifest.read(path)  # a run directory with a readable manifest, or a clear error
        return path
    if recipe:
        return latest_run(outputs, recipe)
    raise UserError("no run given", hint="pass RUN=<run dir> or RECIPE=<name> (its LATEST run)")


def from_settings(s: Settings) -> Path:
    """`resolve` for a command's settings: RUN=, else RECIPE= (default: the embedded recipe)."""
    return resolve(s.outputs, s.run, s.recipe_or_default)


def final_adapter(run: Path) -> Path:
    """The adapter/model folder that training recorded as final, checked to exist and match its hash."""
    m = manifest.read(run)
    final = m.train.final_checkpoint
    where = Path(run) / MANIFEST
    if m.train.status != "completed" or final is None:
        raise UserError(
            f"run did not complete (status: {m.train.status})",
            Where(where),
            "resume or re-run training; no checkpoint is guessed",
        )
    path = Path(run) / final.path
    weights = path / final.file
    if not weights.is_file():
        raise UserError(f"final checkpoint file is missing: {weights}", Where(where, key="train.final_checkpoint"))
    if sha256_file(weights) != final.sha256:
        raise UserError(
            f"final checkpoint changed since training (sha256 mismatch): {weights}",
            Where(where, key="train.final_checkpoint.sha256"),
        )
    return path


def merged_model(run: Path, hashes: bool = False) -> Path:
    """The merged model folder that make merge recorded, checked to hold every file it wrote (hashes=True: each
    file's sha256 too, before anything is built or uploaded from it)."""
    m = manifest.read(run)
    where = Path(run) / MANIFEST
    if m.merge is None:
        raise UserError("the run has no merged model", Where(where, key="merge"), f"make merge RUN={run}")
    merged = Path(run) / m.merge.path
    recorded = m.merge.files
    bad = [
        name
        for name, sha in recorded.items()
        if not (merged / name).is_file() or (hashes and sha256_file(merged / name) != sha)
    ]
    unrecorded = not recorded and (hashes or not (merged / "config.json").is_file())
    if unrecorded or bad:
        raise UserError(
            f"the merged model is incomplete or changed since make merge ({', '.join(bad) or 'no files recorded'}): "
            f"{merged}",
            Where(where, key="merge.files"),
            f"re-run make merge RUN={run}",
        )
    return merged


def completed_runs(outputs: Path) -> list[Path]:
    """Every completed run under OUTPUTS/runs (by its manifest), oldest first; unreadable ones are skipped."""
    found = []
    for path in sorted((Path(outputs) / "runs").glob(f"*/*/{MANIFEST}")):
        try:
            if manifest.read(path.parent).train.status == "completed":
                found.append(path.parent)
        except UserError:
            continue
    return found


def relpath(path: Path, run: Path) -> str:
    return os.path.relpath(Path(path).resolve(), Path(run).resolve())


def _training_hint(run: Path, auto: bool) -> str:
    hint = (
        "wait for it to finish, or stop it; if that trainer is gone without a clean end (a stopped pod), "
        f"FORCE=1 make train RUN={run} takes the run over"
    )
    return hint + ("; RESUME=0 starts a new run beside it" if auto else "")


def refuse_if_training(run: Path, auto: bool = False) -> None:
    """One clear error when a live trainer holds `run` (core/heartbeat.py); nothing otherwise."""
    run = Path(run)
    heartbeat.refuse_if_live(run / TRAIN_LOCK, f"the run {run}", _training_hint(run, auto))


def hold_for_training(run: Path, force: bool = False, auto: bool = False) -> heartbeat.Heartbeat:
    """Mark `run` as being trained by this process until `release()` (a context manager): a second trainer of
    the same run is refused while the heartbeat is fresh; `force` takes it over anyway."""
    run = Path(run)
    return heartbeat.acquire(run / TRAIN_LOCK, f"the run {run}", _training_hint(run, auto), force)
