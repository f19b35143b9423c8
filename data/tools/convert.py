"""`make data-convert DATA=x.jsonl TO=messages|prompt-completion|sharegpt` (chat data) or
`TO=pairs|pairs-messages|pairs-chat|kto` (preference data): convert every record, keeping extra fields
(persona, type, ...) of chat data. If any record cannot be converted faithfully, nothing is written and each one
is named by line."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from core import atomic, cli
from core.errors import UserError, Where
from core.settings import Settings
from data.formats import FORMATS, FormatError, convert
from data.preferences import FORMATS as PREFERENCE
from data.tools import preference_data
from data.validate import read_jsonl, validate_file


def convert_file(path: Path, src: str, dst: str, out: Path) -> int:
    report = validate_file(path, src)
    bad = [str(p) for p in report.problems if not p.message.startswith("duplicate of")]
    lines = []
    for line, record, err in read_jsonl(path):
        if err is not None:
            continue
        try:
            lines.append(json.dumps(convert(record, src, dst), ensure_ascii=False))
        except (FormatError, KeyError) as exc:
            bad.append(f"{path}:{line}: {exc}")
    if bad:
        shown = "\n  ".join(bad[:10]) + (f"\n  (+{len(bad) - 10} more)" if len(bad) > 10 else "")
        raise UserError(
            f"{len(bad)} records cannot be converted to {dst}; nothing was written:\n  {shown}", Where(path)
        )
    if out.resolve() == path.resolve():
        raise UserError("the output would overwrite the input", Where(out), "pass OUT=<new file>")
    atomic.write_text(out, "\n".join(lines) + "\n")
    return len(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", nargs="?", help="a JSONL dataset (default: DATA)")
    parser.add_argument("--to", default=None, choices=FORMATS + PREFERENCE, help="(default: TO)")
    parser.add_argument("--format", default=None, choices=FORMATS + PREFERENCE, help="(default: FORMAT, else detected)")
    parser.add_argument("--out", default=None, help="(default: OUT, else <stem>.<TO>.jsonl beside the input)")
    ns = parser.parse_args(argv)

    def body(s: Settings) -> None:
        ns.data, ns.to, ns.format, ns.out = ns.data or s.data, ns.to or s.to, ns.format or s.format, ns.out or s.out
        if not ns.data or not ns.to:
            raise UserError("DATA and TO are needed", hint="make data-convert DATA=x.jsonl TO=messages")
        from data.tools.data_check import detect_format

        path = Path(ns.data)
        if not path.is_file():
            raise UserError("dataset file not found", Where(path))
        src = ns.format or preference_data.detect_file(path) or detect_format(path)
        out = Path(ns.out) if ns.out else path.with_name(f"{path.stem}.{ns.to}.jsonl")
        if src in PREFERENCE:
            n = preference_data.convert(path, src, ns.to, out)
        elif ns.to in PREFERENCE:
            raise UserError(
                f"{path.name} is {src} chat data, not preference pairs",
                Where(path),
                "make prefs RUN=<run> JUDGES=... builds pairs from a run's judged generations",
            )
        else:
            n = convert_file(path, src, ns.to, out)
        print(f"{n} records {src} -> {ns.to}: {out}")

    return cli.main(body)


if __name__ == "__main__":
    sys.exit(main())
