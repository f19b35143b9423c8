"""Preflight: every dataset file of the config exists and every record parses (file:line for each bad one)."""

from __future__ import annotations

from data.entries import dataset_entries, dataset_file, dataset_format
from data.validate import validate_file
from launch.preflight.findings import Finding
from launch.recipe.resolve import Resolved


def check_datasets(r: Resolved) -> list[Finding]:
    out = []
    for section, i, ds in dataset_entries(r.config):
        key = f"{section}[{i}].path"
        path = dataset_file(ds)
        if not path.is_file():
            out.append(
                Finding(
                    "error",
                    "data",
                    f"dataset file not found: {path}",
                    r.recipe.where(key),
                    "fix the path (relative paths are from the repo root) or override it with ARGS",
                )
            )
            continue
        fmt, fields = dataset_format(ds)
        if fmt == "other":
            out.append(
                Finding(
                    "warning",
                    "data",
                    f"dataset type {ds.get('type')!r} is not checked offline",
                    r.recipe.where(f"{section}[{i}].type"),
                )
            )
            continue
        report = validate_file(path, fmt, **fields)
        if report.ok:
            out.append(Finding("ok", "data", f"{path.name}: {report.records} {fmt} records, all valid"))
        else:
            shown = "; ".join(str(p) for p in report.problems[:5])
            more = f" (+{len(report.problems) - 5} more)" if len(report.problems) > 5 else ""
            out.append(
                Finding(
                    "error",
                    "data",
                    f"{len(report.problems)} bad records of {report.records}: {shown}{more}",
                    r.recipe.where(key),
                    "make data-check DATA=<file> lists every one",
                )
            )
    return out
