"""`make data-check DATA=<file or org/dataset> [SPLIT=train] [RECIPE=x]`: validate every record (the first LIMIT
rows, default 200, of a Hub dataset, streamed) (file:line and reason for each bad
one, nothing dropped silently), then statistics with the recipe's tokenizer and template, printed as a
table and saved as JSON + a histogram PNG under outputs/data/<file stem>/. Preference files (pairs,
pairs-messages, pairs-chat, kto) get per-side statistics instead (data/tools/preference_data.py)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from core import atomic, cli
from core.errors import UserError, Where
from core.settings import Settings
from data.formats import FORMATS, detect
from data.preferences import FORMATS as PREFERENCE
from data.sources import Row
from data.tools import preference_data
from data.validate import checker, read_jsonl, validate_file


def detect_format(path: Path) -> str:
    for _, record, err in read_jsonl(path):
        if err is None and (fmt := detect(record)):
            return fmt
    raise UserError(
        "cannot tell the dataset's format from its records", Where(path), f"pass FORMAT= ({', '.join(FORMATS)})"
    )


def recipe_dataset(recipe: str, data: Path, fmt: str, args: str | None, s: Settings) -> tuple[dict, dict]:
    """(resolved config, dataset entry pointing at `data`) for the recipe, with its tokenizer available locally."""
    from data.entries import dataset_format
    from resolver.architecture import tokenizer_config
    from resolver.resolve import resolve

    r = resolve(recipe, s, device="cpu", args=args, materialize=True)
    entries = r.config.get("datasets") or []
    if not entries:
        raise UserError(f"recipe '{recipe}' has no datasets entry to take the format from", r.recipe.where("datasets"))
    ds = {**entries[0], "path": str(data)}
    want, _ = dataset_format(ds)
    if want != fmt:
        raise UserError(
            f"recipe '{recipe}' trains {want} data but {Path(str(data)).name} is {fmt}",
            Where(data),
            f"convert it first: make data-convert DATA={data} TO={want}",
        )
    source = r.tokenizer_source()
    if not source:
        raise UserError(
            f"the tokenizer of {r.hub_base_model} is not available offline; stats must use the recipe's own",
            r.recipe.where("base_model"),
            "download it once (hf download <model>) or pass ARGS=--tokenizer_config=<dir>",
        )
    return tokenizer_config(r.config, source, cache=s.cache), ds


def recipe_tokenizer(recipe: str | None, args: str | None, s: Settings) -> tuple[Any, str]:
    """(tokenizer, its folder) of the recipe when it is available offline, else (None, '')."""
    if not recipe:
        return None, ""
    from resolver.resolve import resolve

    source = resolve(recipe, s, device="cpu", args=args, materialize=True).tokenizer_source()
    if not source:
        return None, ""
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(source), source


def print_stats(stats: dict[str, Any], name: str) -> None:
    t = Table(title=f"{name}: {stats['records']} valid records")
    t.add_column("figure")
    t.add_column("value", justify="right")
    tok = stats["tokens"]
    t.add_row("tokens min / median / p95 / max", f"{tok['min']} / {tok['median']:g} / {tok['p95']:.0f} / {tok['max']}")
    over = stats["over_sequence_len"]
    t.add_row(f"over sequence_len {stats['sequence_len']}", f"{over['count']} ({over['action']})")
    t.add_row("trained (assistant) token share", f"{stats['trained_token_share']:.1%}")
    t.add_row(
        f"real tokens, batch {stats['padding_efficiency']['micro_batch']} padded, no packing",
        f"{stats['padding_efficiency']['real_token_share']:.1%}",
    )
    t.add_row(
        f"real tokens, packed into {stats['packing_efficiency']['rows']} rows",
        f"{stats['packing_efficiency']['real_token_share']:.1%}",
    )
    for field, counts in stats["groups"].items():
        t.add_row(f"per {field}", ", ".join(f"{k}: {v}" for k, v in sorted(counts.items())))
    Console(width=140).print(t)


def hub_rows(data: str, split: str | None, limit: int) -> list[Row]:
    from data import sources

    try:
        return list(sources.hub_rows({"path": data, "split": split}, limit))
    except Exception as exc:  # noqa: BLE001 - datasets/huggingface_hub raise many types for an unreadable dataset
        raise UserError(
            f"Hub dataset {data} cannot be read ({type(exc).__name__}: {str(exc)[:300]})",
            Where(key="DATA"),
            "check the id and SPLIT=; offline (HF_HUB_OFFLINE=1) only local files are checked",
        ) from None


def validate_rows(rows: list[Row], fmt: str) -> list[str]:
    """'where: reason' for every unusable row (the same checks as for a local file), duplicates included."""
    check, seen, problems = checker(fmt), {}, []
    for row in rows:
        reason = row.error or check(row.record)
        if reason is None:
            key = json.dumps(row.record, sort_keys=True, default=str)
            reason = f"duplicate of row {seen[key]}" if key in seen else None
            seen.setdefault(key, row.line)
        if reason:
            problems.append(f"{row.where}: {reason}")
    return problems


def run(
    data: str,
    recipe: str | None,
    fmt: str | None,
    args: str | None,
    s: Settings,
    split: str | None = None,
    limit: int | None = None,
) -> dict[str, Any]:
    from data import sources

    local = sources.is_local({"path": data})
    path = Path(data).expanduser()
    if local and not path.is_file():
        raise UserError("dataset file not found", Where(path))
    if local and path.suffix.lower() == ".jsonl" and (pref := fmt or preference_data.detect_file(path)) in PREFERENCE:
        return preference_data.check(path, pref, s.outputs, lambda: recipe_tokenizer(recipe, args, s))
    if (
        local
        and path.suffix.lower() in (".jsonl", ".json")
        and not (path.suffix == ".json" and path.read_bytes()[:1] == b"[")
    ):
        fmt = fmt or detect_format(path)
        report = validate_file(path, fmt)
        problems, count = [str(p) for p in report.problems], report.records
        rows = None
    else:
        rows = list(sources.local_rows(path)) if local else hub_rows(data, split, limit or 200)
        fmt = fmt or next(
            (f for r in rows if r.error is None and (f := preference_data.prefs.detect(r.record) or detect(r.record))),
            None,
        )
        if fmt is None:
            raise UserError(
                "cannot tell the dataset's format from its records", Where(data), f"pass FORMAT= ({', '.join(FORMATS)})"
            )
        problems, count = validate_rows(rows, fmt), len(rows)
    for problem in problems:
        print(problem)
    label = str(path) if local else f"{data} (split {split or 'train'}, first {count} rows)"
    print(f"{label}: {count} records, {len(problems)} unusable ({fmt})")
    result: dict[str, Any] = {"file": data, "format": fmt, "records": count, "problems": problems}
    if recipe and fmt not in PREFERENCE and problems:  # the stats need the tokenizer: a bad file is refused first
        print(preference_data.SKIPPED)
    elif recipe and fmt not in PREFERENCE:  # preference rows: validated above; per-side stats are for JSONL files
        config, ds = recipe_dataset(recipe, path if local else data, fmt, args, s)
        if split:
            ds["split"] = split
        from data.stats import histogram, summarize, tokenize_rows

        items = tokenize_rows(config, ds, rows if rows is not None else sources.local_rows(path))
        stats = summarize(
            items,
            int(config.get("sequence_len") or 2048),
            int(config.get("micro_batch_size") or 1),
            truncate=config.get("excess_length_strategy") == "truncate",
        )
        stats.update(recipe=recipe, tokenizer=str(config["tokenizer_config"]))
        result["stats"] = stats
        out = s.outputs / "data" / (path.stem if local else data.replace("/", "--"))
        out.mkdir(parents=True, exist_ok=True)
        histogram(
            [it["tokens"] for it in items],
            stats["sequence_len"],
            f"{Path(data).name} with {recipe}",
            out / "lengths.png",
        )
        atomic.write_json(out / "stats.json", result)
        print_stats(stats, Path(data).name)
        print(f"saved: {out / 'stats.json'}  {out / 'lengths.png'}")
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", nargs="?", help="a JSONL dataset (default: DATA)")
    parser.add_argument(
        "--recipe", default=None, help="tokenize with this recipe (default: RECIPE, else the embedded one)"
    )
    parser.add_argument("--format", default=None, choices=FORMATS + PREFERENCE, help="(default: FORMAT, else detected)")
    parser.add_argument("--args", default=None, help="recipe overrides (default: ARGS)")
    ns = parser.parse_args(argv)

    def body(s: Settings) -> int:
        data = ns.data or s.data
        if not data:
            raise UserError("no dataset given", Where(key="DATA"), "make data-check DATA=path.jsonl [RECIPE=name]")
        result = run(
            str(data),
            ns.recipe or s.recipe_or_default,
            ns.format or s.format,
            ns.args if ns.args is not None else s.args,
            s,
            split=s.split,
            limit=s.limit or None,
        )
        return 2 if result["problems"] else 0

    return cli.main(body)


if __name__ == "__main__":
    sys.exit(main())
