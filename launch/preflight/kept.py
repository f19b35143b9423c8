"""The heavy checks' findings, kept per input. axolotl's validate_config, the end of turn tokenized through axolotl,
the lengths and the preference rendering are functions of the resolved config, the model's small files, the local
data files, the installed libraries and this repo's own code: when none of these changed since a `make check`,
their findings are read back from <cache>/preflight/ instead of importing axolotl, torch and transformers again
(seconds). A config with a Hub dataset (which can change upstream) is never kept; FORCE=1 runs them again."""

from __future__ import annotations

import hashlib
import importlib.metadata as md
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from core import atomic
from core.errors import Where
from core.paths import REPO
from data import sources
from data.entries import dataset_entries, dataset_file
from launch.preflight.findings import Finding
from resolver import facts

LIBRARIES = ("axolotl", "transformers", "tokenizers", "torch", "peft", "trl", "datasets", "jinja2", "pydantic")
KEEP = 500  # findings files kept (a few kB each)
CODE = ("core", "data", "launch/preflight", "resolver")  # what the checks run (and the tables they read)
Results = dict[str, list[Finding]]


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _version(dist: str) -> str | None:
    try:
        return md.version(dist)
    except md.PackageNotFoundError:
        return None


def _model_files(folder: str | Path | None) -> dict[str, str]:
    folder = Path(folder) if folder else None
    if folder is None or not folder.is_dir():
        return {}
    return {name: _sha(folder / name) for name in facts.SMALL_FILES if (folder / name).is_file()}


def key(r: Any) -> str | None:
    """What the heavy checks' findings depend on, hashed; None when they are not kept (a Hub dataset)."""
    entries = dataset_entries(r.config)
    if any(not sources.is_local(ds) for _, _, ds in entries):
        return None
    found = facts.find(r.config["base_model"], cache=r.settings.cache) or facts.find(
        r.hub_base_model, cache=r.settings.cache
    )
    code = sorted(p for top in CODE for p in (REPO / top).rglob("*") if p.suffix in (".py", ".yaml") and p.is_file())
    source = r.tokenizer_source()
    parts = {
        "config": r.config,
        "device": r.device,
        "meta": r.meta.model_dump(mode="json"),
        "facts": found.model_dump(mode="json") if found else None,
        "model": _model_files(r.config["base_model"]),
        "tokenizer": [source, _model_files(source)],
        "data": {str(dataset_file(ds)): _sha(dataset_file(ds)) for _, _, ds in entries if dataset_file(ds).is_file()},
        "libraries": {d: _version(d) for d in LIBRARIES},
        "code": {str(p.relative_to(REPO)): _sha(p) for p in code},
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:32]


def _to_json(f: Finding) -> dict[str, Any]:
    where = f.where
    if where is not None:
        where = {"file": None if where.file is None else str(where.file), "path": isinstance(where.file, Path)} | {
            "line": where.line,
            "key": where.key,
        }
    return {"level": f.level, "check": f.check, "message": f.message, "where": where, "hint": f.hint}


def _from_json(d: dict[str, Any]) -> Finding:
    w = d["where"]
    where = None if w is None else Where(Path(w["file"]) if w["path"] else w["file"], w["line"], w["key"])
    return Finding(d["level"], d["check"], d["message"], where, d["hint"])


def findings(r: Any, run: Callable[[], Results], force: bool = False) -> tuple[Results, Path | None]:
    """(the heavy checks' findings, the cache file they were read from, or None when they ran now)."""
    digest = key(r)
    path = r.settings.cache / "preflight" / f"{digest}.json" if digest else None
    if path is not None and path.is_file() and not force:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            return {name: [_from_json(f) for f in found] for name, found in data.items()}, path
        except (OSError, ValueError, KeyError, TypeError):
            pass  # a damaged file: the checks run again
    results = run()
    if path is not None:
        atomic.write_json(path, {name: [_to_json(f) for f in found] for name, found in results.items()})
        _prune(path.parent)
    return results, None


def _prune(folder: Path) -> None:
    """Keep the newest KEEP files: every config checked once (a test's temp recipe too) leaves one."""
    aged = []
    for path in folder.glob("*.json"):
        try:
            aged.append((path.stat().st_mtime, path))
        except FileNotFoundError:  # pruned by another command at the same time
            continue
    for _, old in sorted(aged, reverse=True)[KEEP:]:
        old.unlink(missing_ok=True)
