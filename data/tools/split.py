"""`make data-split DATA=x.jsonl VAL=60 SEED=42`: remove exact and near duplicates (named by line), then a
deterministic train/val split written beside the input as <stem>.train.jsonl and <stem>.val.jsonl."""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import re
import sys
import unicodedata
from pathlib import Path
from typing import Any

from core import atomic, cli, settings
from core.errors import UserError, Where
from core.settings import Settings
from data.formats import FORMATS, to_messages
from data.validate import read_jsonl, validate_file


def exact_key(messages: list[dict]) -> str:
    return hashlib.sha256(json.dumps(messages, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


def near_key(messages: list[dict]) -> str:
    """Case, accents, punctuation and whitespace folded: catches copies that differ only cosmetically."""
    text = " ".join(f"{m['role']}: {m['content']}" for m in messages)
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower()
    text = re.sub(r"[^\w\s]", "", text)
    return hashlib.sha256(re.sub(r"\s+", " ", text).strip().encode()).hexdigest()


def dedup(rows: list[tuple[int, dict]], fmt: str) -> tuple[list[tuple[int, dict]], list[dict[str, Any]]]:
    kept, removed, seen_exact, seen_near = [], [], {}, {}
    for line, record in rows:
        msgs = to_messages(record, fmt)
        e, n = exact_key(msgs), near_key(msgs)
        if e in seen_exact:
            removed.append({"line": line, "duplicate_of": seen_exact[e], "kind": "exact"})
        elif n in seen_near:
            removed.append({"line": line, "duplicate_of": seen_near[n], "kind": "near"})
        else:
            seen_exact[e], seen_near[n] = line, line
            kept.append((line, record))
    return kept, removed


def split(path: Path, val: int, seed: int, fmt: str, out_dir: Path | None = None) -> dict[str, Any]:
    report = validate_file(path, fmt)
    bad = [p for p in report.problems if not p.message.startswith("duplicate of")]
    if bad:
        raise UserError(
            f"{len(bad)} unusable records, e.g. {bad[0]}",
            Where(path, bad[0].line),
            f"make data-check DATA={path} lists them all; fix or remove them first",
        )
    rows = [(line, rec) for line, rec, err in read_jsonl(path) if err is None]
    kept, removed = dedup(rows, fmt)
    if val >= len(kept):
        raise UserError(f"VAL={val} leaves nothing to train on ({len(kept)} unique records)", Where(key="VAL"))
    order = list(range(len(kept)))
    random.Random(seed).shuffle(order)
    val_idx = set(order[:val])
    out_dir = Path(out_dir or path.parent)
    parts = {
        "train": [r for i, r in enumerate(kept) if i not in val_idx],
        "val": [r for i, r in enumerate(kept) if i in val_idx],
    }
    result: dict[str, Any] = {"input": str(path), "seed": seed, "duplicates_removed": removed}
    for name, part in parts.items():
        target = out_dir / f"{path.stem}.{name}.jsonl"
        if target.resolve() == path.resolve():
            raise UserError("the split would overwrite its input", Where(target))
        atomic.write_text(target, "".join(json.dumps(rec, ensure_ascii=False) + "\n" for _, rec in part))
        result[name] = {"file": str(target), "records": len(part), "lines": [line for line, _ in part]}
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", nargs="?", help="a JSONL dataset (default: DATA)")
    parser.add_argument(
        "--val", type=settings.flag_type("VAL"), default=None, help="held-out records (default: VAL, else 60)"
    )
    parser.add_argument("--seed", type=settings.flag_type("SEED"), default=None, help="(default: SEED, else 42)")
    parser.add_argument("--format", default=None, choices=FORMATS, help="(default: FORMAT, else detected)")
    parser.add_argument("--out", default=None, help="output folder (default: OUT, else beside the input)")
    ns = parser.parse_args(argv)

    def body(s: Settings) -> None:
        ns.data, ns.format, ns.out = ns.data or s.data, ns.format or s.format, ns.out or s.out
        ns.val = ns.val if ns.val is not None else (s.val or 60)
        ns.seed = ns.seed if ns.seed is not None else (42 if s.seed is None else s.seed)
        if not ns.data:
            raise UserError("no dataset given", Where(key="DATA"), "make data-split DATA=path.jsonl VAL=60 SEED=42")
        from data.tools.data_check import detect_format

        path = Path(ns.data)
        if not path.is_file():
            raise UserError("dataset file not found", Where(path))
        result = split(path, ns.val, ns.seed, ns.format or detect_format(path), Path(ns.out) if ns.out else None)
        for d in result["duplicates_removed"]:
            print(f"{path}:{d['line']}: removed, {d['kind']} duplicate of line {d['duplicate_of']}")
        print(f"train: {result['train']['records']} -> {result['train']['file']}")
        print(f"val:   {result['val']['records']} -> {result['val']['file']}")

    return cli.main(body)


if __name__ == "__main__":
    sys.exit(main())
