"""Records of an axolotl dataset entry, wherever they live, each with a locator that names where it came from:
local json / jsonl / parquet / csv files ("file:line", "file, row N") and Hub datasets (`path: org/name` with
axolotl's `name`, `split`, `data_files`, `revision`), streamed through `datasets` so only the first rows are read
("dataset org/name, split train, row N")."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from data.entries import dataset_file
from data.validate import read_jsonl

LOCAL_SUFFIXES = (".json", ".jsonl", ".parquet", ".csv")


@dataclass(frozen=True)
class Row:
    where: str  # how a message names it
    line: int  # line (text files) or 1-based row number
    record: Any
    error: str | None = None  # the row could not be read as a record


def is_local(ds: dict) -> bool:
    """A local file or folder (relative paths are from the repo root), as axolotl decides: it exists here, or it
    looks like a file path; anything else is a Hub dataset id."""
    path = str(ds.get("path", ""))
    return dataset_file(ds).exists() or path.endswith(LOCAL_SUFFIXES) or path.startswith((".", "/", "~"))


def hub_label(ds: dict) -> str:
    parts = [f"dataset {ds['path']}"]
    if ds.get("name"):
        parts.append(f"config {ds['name']}")
    parts.append(f"split {ds.get('split') or 'train'}")
    return ", ".join(parts)


def _json_rows(path: Path) -> Iterator[Row]:
    """A .json file holding one array of records, or JSON lines."""
    head = path.read_bytes()[:1024].lstrip()
    if head.startswith(b"["):
        try:
            rows = json.loads(path.read_text(encoding="utf-8-sig"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            yield Row(str(path), getattr(exc, "lineno", 1), None, f"not valid JSON ({exc})")
            return
        for i, rec in enumerate(rows, 1):
            yield Row(f"{path}, record {i}", i, rec)
        return
    for line, rec, err in read_jsonl(path):
        yield Row(f"{path}:{line}", line, rec, err)


def _parquet_rows(path: Path) -> Iterator[Row]:
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except Exception as exc:  # noqa: BLE001 - pyarrow raises several types for a bad file
        yield Row(str(path), 1, None, f"not a readable parquet file ({type(exc).__name__}: {exc})")
        return
    for i, rec in enumerate(table.to_pylist(), 1):
        yield Row(f"{path}, row {i}", i, rec)


def _csv_rows(path: Path) -> Iterator[Row]:
    with open(path, newline="", encoding="utf-8-sig") as fh:
        reader = csv.DictReader(fh)
        for rec in reader:
            yield Row(f"{path}:{reader.line_num}", reader.line_num, dict(rec))


def local_rows(path: Path) -> Iterator[Row]:
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        yield from _parquet_rows(path)
    elif suffix == ".csv":
        yield from _csv_rows(path)
    elif suffix == ".json":
        yield from _json_rows(path)
    else:
        for line, rec, err in read_jsonl(path):
            yield Row(f"{path}:{line}", line, rec, err)


def hub_rows(ds: dict, limit: int) -> Iterator[Row]:
    """The first `limit` rows of a Hub dataset, streamed (nothing else is downloaded)."""
    from datasets import load_dataset

    kwargs: dict[str, Any] = {"split": ds.get("split") or "train", "streaming": True}
    for key in ("name", "revision", "data_files"):
        if ds.get(key):
            kwargs[key] = ds[key]
    stream = load_dataset(ds["path"], **kwargs)
    label = hub_label(ds)
    for i, rec in enumerate(stream, 1):
        if i > limit:
            return
        yield Row(f"{label}, row {i}", i, rec)


def rows(ds: dict, limit: int | None = None) -> Iterator[Row]:
    """Every row of a local entry (the first `limit` when given), or the first `limit` (default 200) of a Hub one."""
    if is_local(ds):
        for i, row in enumerate(local_rows(dataset_file(ds)), 1):
            if limit is not None and i > limit:
                return
            yield row
    else:
        yield from hub_rows(ds, limit or 200)
