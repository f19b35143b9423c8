"""Preflight: every dataset entry of the config (training and held-out, several mixed as axolotl mixes them) is
readable and every record fits its type (data/kinds.py), each bad record named by file and line, or by dataset,
split and row for a Hub dataset (its first rows are streamed; nothing else is downloaded)."""

from __future__ import annotations

from data import sources
from data.entries import dataset_entries, dataset_file
from data.kinds import kind_of
from launch.preflight.findings import Finding
from resolver.resolve import Resolved

HUB_ROWS = 200  # rows of a Hub dataset the preflight reads (streamed)
SHOWN = 5


def check_entry(r: Resolved, section: str, i: int, ds: dict, online: bool, why: str = "") -> list[Finding]:
    key = f"{section}[{i}]"
    kind = kind_of(ds, rl=r.config.get("rl"))
    if kind.error:
        return [Finding("error", "data", kind.error, r.where(f"{key}.type"))]
    local = sources.is_local(ds)
    if local and not dataset_file(ds).exists():
        return [
            Finding(
                "error",
                "data",
                f"dataset file not found: {dataset_file(ds)}",
                r.where(f"{key}.path"),
                "fix the path (relative paths are from the repo root) or override it with ARGS",
            )
        ]
    label = dataset_file(ds).name if local else sources.hub_label(ds)
    if not local and not online:
        return [
            Finding(
                "warning",
                "data",
                f"{label}: a Hub dataset, not checked offline ({why or 'HF_HUB_OFFLINE=1'})",
                r.where(f"{key}.path"),
                "run make check with network access to validate its first rows",
            )
        ]
    problems, count = [], 0
    try:
        for row in sources.rows(ds, None if local else HUB_ROWS):
            count += 1
            reason = row.error or (kind.check(row.record) if kind.check else None)
            if reason:
                problems.append(f"{row.where}: {reason}")
    except Exception as exc:  # noqa: BLE001 - datasets/huggingface_hub raise many types for an unreadable source
        return [
            Finding(
                "error",
                "data",
                f"{label}: cannot be read ({type(exc).__name__}: {str(exc)[:300]})",
                r.where(f"{key}.path"),
                "check path, name, split, data_files and revision (axolotl's keys)",
            )
        ]
    scope = f"{count} records" if local else f"first {count} rows"
    if count == 0:
        return [Finding("error", "data", f"{label}: no records", r.where(f"{key}.path"))]
    if problems:
        more = f" (+{len(problems) - SHOWN} more)" if len(problems) > SHOWN else ""
        return [
            Finding(
                "error",
                "data",
                f"{label}: {len(problems)} bad of {scope}: " + "; ".join(problems[:SHOWN]) + more,
                r.where(f"{key}.path"),
                "make data-check DATA=<file> lists every one" if local else None,
            )
        ]
    if kind.check is None:
        return [
            Finding(
                "warning",
                "data",
                f"{label}: {scope} readable; type {kind.name!r} is not validated: {kind.note}",
                r.where(f"{key}.type"),
            )
        ]
    return [Finding("ok", "data", f"{label}: {scope} of type {kind.name}, all valid ({kind.note})")]


def check_datasets(r: Resolved) -> list[Finding]:
    from resolver.facts import offline_reason, online

    entries = dataset_entries(r.config)
    if not entries and r.config.get("pretraining_dataset"):
        return [
            Finding(
                "warning",
                "data",
                "pretraining_dataset is streamed by axolotl at train time; not validated here",
                r.where("pretraining_dataset"),
            )
        ]
    if not entries:
        return [
            Finding(
                "error",
                "data",
                "the config has no datasets",
                r.where("datasets"),
                "add datasets: [{path: ..., type: ...}] (axolotl's keys)",
            )
        ]
    hub = any(not sources.is_local(ds) for _, _, ds in entries)
    up = hub and online(r.settings)  # probed only for a Hub dataset: a run on local files makes no request
    why = "" if up else offline_reason(r.settings)
    return [f for section, i, ds in entries for f in check_entry(r, section, i, ds, up, why)]
