"""`make data-check` and `make data-convert` for preference files (data/preferences.py formats): every bad row by
file:line, per-side statistics (characters, and tokens with the recipe's tokenizer when it is at hand) with the
share of pairs whose chosen side is longer, and conversion between pairs, pairs-messages, pairs-chat and kto
(kto -> pairs joins each prompt's desirable and undesirable completions; a completion left without a partner
is named and nothing is written)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from core import atomic
from core.errors import UserError, Where
from data import preferences as prefs
from data.validate import read_jsonl

SKIPPED = "token statistics: not computed until the unusable records are fixed"
LENGTH_BIASED = 0.7  # chosen longer in more than this share of pairs (or less than 1 - it): a length lesson


def detect_file(path: Path) -> str | None:
    """The preference format of the file's first readable record, or None (not a preference file)."""
    for _, record, err in read_jsonl(path):
        if err is None:
            return prefs.detect(record)
    return None


def read_file(path: Path, fmt: str) -> tuple[list[tuple[int, prefs.Pair | prefs.Judged]], list[str]]:
    """([(line, item)], ['file:line: reason']) with the shared checks and exact duplicates."""
    items, problems, seen = [], [], {}
    for line, record, err in read_jsonl(path):
        reason = err
        item = None
        if reason is None:
            try:
                item = prefs.read(record, fmt)
                reason = prefs.problem(item)
            except prefs.PreferenceError as exc:
                reason = str(exc)
        if reason is None:
            key = repr(item)
            reason = f"duplicate of line {seen[key]}" if key in seen else None
            seen.setdefault(key, line)
        if reason:
            problems.append(f"{path}:{line}: {reason}")
        else:
            items.append((line, item))
    return items, problems


def length_bias(share: float | None) -> str | None:
    if share is None or (1 - LENGTH_BIASED) <= share <= LENGTH_BIASED:
        return None
    side = "chosen" if share > LENGTH_BIASED else "rejected"
    return (
        f"the {side} side is the longer one in {max(share, 1 - share):.0%} of pairs: preference tuning on it "
        "teaches length as much as quality (judges favour longer answers)"
    )


def check(
    path: Path, fmt: str, outputs: Path, tokenizer_of: Callable[[], tuple[Any, str]] | None = None
) -> dict[str, Any]:
    """Validate and summarise; prints each bad row, the table of per-side figures and a length-bias warning.
    `tokenizer_of` loads (tokenizer, its folder) for token counts, only once every record is usable (loading a
    tokenizer imports transformers: a bad file is refused first)."""
    items, problems = read_file(path, fmt)
    for p in problems:
        print(p)
    print(f"{path}: {len(items) + len(problems)} records, {len(problems)} unusable ({fmt})")
    only = [it for _, it in items]
    result: dict[str, Any] = {
        "file": str(path),
        "format": fmt,
        "records": len(items) + len(problems),
        "problems": problems,
        "stats": {"characters": prefs.side_stats(only)},
    }
    tokenizer, name = tokenizer_of() if tokenizer_of is not None and not problems else (None, "")
    if tokenizer_of is not None and problems:
        print(SKIPPED)
    if tokenizer is not None:
        count = lambda text: len(tokenizer(text, add_special_tokens=False)["input_ids"])  # noqa: E731
        result["stats"]["tokens"] = prefs.side_stats(only, count)
        result["stats"]["tokenizer"] = name
    _print(result["stats"])
    bias = length_bias(result["stats"]["characters"].get("chosen_longer_share"))
    if bias:
        print(f"warning: {bias}")
    result["length_bias"] = bias
    out = outputs / "data" / path.stem
    out.mkdir(parents=True, exist_ok=True)
    atomic.write_json(out / "stats.json", result)
    print(f"saved: {out / 'stats.json'}")
    return result


def _print(stats: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    t = Table(title="per-side lengths")
    t.add_column("unit")
    t.add_column("side")
    t.add_column("n / min / median / p95 / max", justify="right")
    for unit in ("characters", "tokens"):
        for side, s in (stats.get(unit) or {}).items():
            if isinstance(s, dict) and s.get("n"):
                t.add_row(unit, side, f"{s['n']} / {s['min']} / {s['median']:g} / {s['p95']:.0f} / {s['max']}")
    share = (stats.get("characters") or {}).get("chosen_longer_share")
    if share is not None:
        t.add_row("pairs", "chosen longer", f"{share:.0%}")
    Console(width=120).print(t)


def convert(path: Path, src: str, dst: str, out: Path) -> int:
    """Convert every record or nothing; returns the number of records written."""
    if dst not in prefs.FORMATS:
        raise UserError(
            f"a {src} file converts to a preference format ({', '.join(prefs.FORMATS)}), not {dst}", Where(key="TO")
        )
    if out.resolve() == path.resolve():
        raise UserError("the output would overwrite the input", Where(out), "pass OUT=<new file>")
    items, bad = read_file(path, src)
    pairs: list[prefs.Pair] = []
    if src == "kto" and dst != "kto":
        pairs, alone = prefs.pair_up(items)
        bad += [f"{path}:{line}: no completion of the opposite label for this prompt to pair it with" for line in alone]
    elif src == "kto":
        raise UserError("the file is already kto", Where(path))
    else:
        pairs = [it for _, it in items]
    records = []
    for pair in pairs:
        try:
            records += prefs.write(pair, dst)
        except prefs.PreferenceError as exc:
            bad.append(f"{path}: {exc}")
    if bad:
        shown = "\n  ".join(bad[:10]) + (f"\n  (+{len(bad) - 10} more)" if len(bad) > 10 else "")
        raise UserError(
            f"{len(bad)} records cannot be converted to {dst}; nothing was written:\n  {shown}", Where(path)
        )
    atomic.write_text(out, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records))
    return len(records)
