"""Read judged exports into one row shape: the seeds' format and our own (eval/judge.py) format.

Seed rows hold one judgment each; the seed harness always showed the baseline as "Response A" whatever
`presentation_order` says (its stated mapping: A = baseline, B = candidate), so seed rows are read with
order "BC". Our rows carry their own order and come in pairs (both orders of the same item).

Each of our rows also says what was judged (`judged`: the judge's identity and prompt, the order, and per side
the sha256 of the text with the model, backend, settings and seed that generated it) and is cached under the
hash of that (`key`): a changed generation is a new key, judged again, and a verdict is joined only to the
texts it was given for (`given_for`).
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any

from core.errors import UserError, Where
from eval.verdicts import parse_label, to_model

OURS = "affinage-judged-v1"
SEED_WINNER = {"brie": "candidate", "baseline": "baseline", "tie": "tie"}


def run_name(path: Path) -> str:
    """The experiment a seed export belongs to: its stem up to '_CORRECTED' / '_judged'."""
    return re.split(r"_CORRECTED|_judged", path.stem)[0]


def read(path: Path) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    seen: dict[str, int] = {}
    with open(path, encoding="utf-8") as fh:
        for line, raw in enumerate(fh, 1):
            if not raw.strip():
                continue
            try:
                rec = json.loads(raw)
            except json.JSONDecodeError as exc:
                raise UserError(f"not valid JSON ({exc.msg})", Where(path, line)) from None
            if rec.get("format") == OURS:
                rows.append({**rec, "file": path.name, "line": line})
            elif "judgment" in rec and ("brie_response" in rec or "brie_output" in rec):
                row = seed_row(rec, path, line)
                # a suite can hold the same prompt twice: the k-th occurrence is its own item
                seen[row["item"]] = seen.get(row["item"], 0) + 1
                row["item"] += f"#{seen[row['item']]}"
                rows.append(row)
            else:
                raise UserError(
                    "neither a seed judged export row nor ours (no 'judgment' / 'format')", Where(path, line)
                )
    if not rows:
        raise UserError("no judged rows", Where(path))
    return rows


def seed_row(rec: dict[str, Any], path: Path, line: int) -> dict[str, Any]:
    suite = rec.get("config_name") or rec.get("category") or "all"
    label = parse_label(rec.get("judgment"))
    return {
        "format": "seed",
        "file": path.name,
        "line": line,
        "run": run_name(path),
        "judge": rec.get("judge_model") or "unrecorded",
        "suite": suite,
        "item": f"{suite}#{rec.get('prompt_num')}",
        "prompt": rec.get("prompt"),
        "order": "BC",
        "reply": rec.get("judgment"),
        "label": label,
        "verdict": to_model(label, "BC"),
        "stored": SEED_WINNER.get(rec.get("winner"), "invalid"),
        "stored_buggy": SEED_WINNER.get(rec.get("winner_ORIGINAL_BUGGY")) if "winner_ORIGINAL_BUGGY" in rec else None,
    }


def text_sha256(text: str | None) -> str:
    return hashlib.sha256((text or "").encode()).hexdigest()


def judged_spec(
    judge: dict[str, Any], order: str, prompt: str, candidate: str, baseline: str, sides: dict | None = None
) -> dict[str, Any]:
    """What one judgment was given: the judge (name, model, endpoint, prompt), the order, and per side the text's
    hash and how it was generated (sides: {"candidate": {model, backend, settings, seed}, "baseline": {...}})."""
    sides = sides or {}
    return {
        "judge": judge,
        "order": order,
        "prompt": text_sha256(prompt),
        "candidate": {**sides.get("candidate", {}), "text": text_sha256(candidate)},
        "baseline": {**sides.get("baseline", {}), "text": text_sha256(baseline)},
    }


def verdict_key(spec: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(spec, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


def given_for(row: dict[str, Any], generation: dict[str, Any] | None) -> str | None:
    """None when the verdict row was given for this generation row's prompt and texts; else what differs."""
    if generation is None:
        return f"it judged item {row.get('item')}, which the generations do not hold"
    judged = row.get("judged")
    if not isinstance(judged, dict):
        return "it records no hashes of the texts it judged (written before verdicts were keyed)"
    for part, text in (
        ("prompt", generation.get("prompt")),
        ("candidate", generation.get("candidate")),
        ("baseline", generation.get("baseline")),
    ):
        recorded = judged.get(part) if part == "prompt" else (judged.get(part) or {}).get("text")
        if recorded != text_sha256(text):
            return f"its {part} text (sha256 {str(recorded)[:12]}) is not the one generated (sha256 {text_sha256(text)[:12]})"
    return None


def read_cache_lines(out: Path) -> list[tuple[int, dict[str, Any]]]:
    """(line number, row) for the judged rows already on disk. A last line cut short by an interrupted write is
    dropped; any other line that is not JSON is an error naming it."""
    if not out.is_file():
        return []
    lines = out.read_text(encoding="utf-8").split("\n")
    rows = []
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            rows.append((n, json.loads(line)))
        except json.JSONDecodeError:
            if n == len(lines):  # no newline after it: the write was interrupted
                print(f"note: {out}:{n}: dropping a row cut short by an interrupted run; it is asked again")
                continue
            raise UserError(
                "judge cache line is not JSON",
                Where(out, line=n),
                "delete that line (it is asked again) or the file (everything is asked again)",
            ) from None
    return rows


def read_cache(out: Path) -> list[dict[str, Any]]:
    return [row for _, row in read_cache_lines(out)]
