"""`make prefs RUN=<sft run> [JUDGES=a,b] [AGREE=any|all] [VAL=n] [FORCE=1]`: preference pairs from a run's
judged generations (make judge): its generation cache (both models' answer per prompt) and judge rows.

A pair is kept only where a judge preferred the same answer in BOTH presentation orders (position-consistent);
a tie, an invalid or failed verdict, or an order flip drops the prompt. With several judges, AGREE=any (default)
keeps a prompt when at least one judge is position-consistent and none is consistent the other way; AGREE=all
needs every judge consistent on the same side. Each pair carries its provenance: the judges, both verdicts of
each, and the identities of the generating models (final adapter sha256, base model). Pairs go to
<run>/prefs/pairs.jsonl (+ pairs.val.jsonl, VAL= pairs held out, deterministic) in pairs-messages format (a
recipe's type chat_template.default reads it) and the manifest's `prefs` section.

Refused unless FORCE=1, with the numbers: fewer than MIN_PAIRS pairs, or a set where one side is the longer
in more than 70 % of pairs (judges favour length; such a set teaches length).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

from core import atomic, cli, manifest, rundir, settings
from core.errors import UserError, Where
from core.hashing import sha256_file
from core.manifest import PrefsSection
from data import preferences as prefs
from data.tools.preference_data import length_bias
from eval.judged_io import read_cache

MIN_PAIRS = 20
SIDES = ("candidate", "baseline")


def load_generations(run: Path, section: Any) -> tuple[Path, dict[str, dict[str, Any]]]:
    if not section.generations:
        raise UserError(
            "the judge section names no generation cache",
            Where(run / manifest.MANIFEST, key="judge"),
            f"run make judge RUN={run} again (this version records both models' answers)",
        )
    path = run / section.generations
    if not path.is_file():
        raise UserError("the run's generation cache is missing", Where(path), f"make judge RUN={run} regenerates it")
    rows = {}
    for line, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if raw.strip():
            try:
                rec = json.loads(raw)
            except json.JSONDecodeError:
                raise UserError("generation cache line is not JSON", Where(path, line)) from None
            rows[rec["item"]] = rec
    return path, rows


def verdicts(run: Path, files: list[str], judges: list[str] | None) -> dict[str, dict[str, dict[str, str]]]:
    """judge -> item -> order -> verdict (candidate | baseline | tie | invalid); failed requests count invalid."""
    out: dict[str, dict[str, dict[str, str]]] = defaultdict(lambda: defaultdict(dict))
    for rel in files:
        for row in read_cache(run / rel):
            verdict = "invalid" if row.get("error") else row.get("verdict") or "invalid"
            out[row["judge"]][row["item"]][row["order"]] = verdict
    if judges:
        missing = [j for j in judges if j not in out]
        if missing:
            raise UserError(
                f"judge {missing[0]} has not judged this run (judged: {', '.join(sorted(out)) or 'none'})",
                Where(key="JUDGES"),
                f"make judge RUN={run} JUDGES={','.join(judges)} first",
            )
        out = defaultdict(lambda: defaultdict(dict), {j: out[j] for j in judges})
    return out


def consistent(orders: dict[str, str]) -> str | None:
    """The model a judge preferred in both orders, or None (a flip, a tie, an invalid verdict, an order missing)."""
    seen = set(orders.values())
    if len(orders) < 2 or len(seen) != 1:
        return None
    (winner,) = seen
    return winner if winner in SIDES else None


def decide(item: str, by_judge: dict[str, dict[str, dict[str, str]]], agree: str) -> tuple[str | None, str]:
    """(winning side or None, reason)."""
    picks = {j: consistent(v.get(item, {})) for j, v in by_judge.items()}
    sides = {p for p in picks.values() if p}
    if len(sides) > 1:
        return None, "judges disagree"
    if not sides:
        flat = [o for v in by_judge.values() for o in v.get(item, {}).values()]
        return None, "tie or invalid" if flat and set(flat) <= {"tie", "invalid"} else "position-inconsistent"
    if agree == "all" and not all(picks.values()):
        return None, "not every judge position-consistent"
    return next(iter(sides)), "kept"


def build(run: Path, judges: list[str] | None, agree: str, val: int | None, force: bool, log=print) -> PrefsSection:
    m = manifest.read(run)
    if m.judge is None:
        raise UserError(
            "this run has not been judged",
            Where(run / manifest.MANIFEST),
            f"make judge RUN={run} JUDGES=... first (both orders per prompt)",
        )
    gen_path, generations = load_generations(run, m.judge)
    by_judge = verdicts(run, m.judge.files, judges)
    base_name = m.train.base_model.name if m.train.base_model else "base model"
    identity = {
        "candidate": {
            "run": run.name,
            "recipe": m.recipe_name,
            "adapter_sha256": m.train.final_checkpoint.sha256 if m.train.final_checkpoint else None,
        },
        "baseline": {"model": m.judge.baseline, "name": base_name},
    }
    pairs, dropped = [], defaultdict(int)
    for item, gen in generations.items():
        side, reason = decide(item, by_judge, agree)
        if side is None:
            dropped[reason] += 1
            continue
        other = "baseline" if side == "candidate" else "candidate"
        turns = ([{"role": "system", "content": gen["system"]}] if gen.get("system") else []) + [
            {"role": "user", "content": gen["prompt"]}
        ]
        pair = prefs.Pair(turns, gen[side], gen[other])
        problem = prefs.problem(pair)
        if problem:
            dropped[problem.split(" (")[0]] += 1
            continue
        provenance = {
            "item": item,
            "suite": gen.get("suite"),
            "chosen": side,
            "rejected": other,
            "verdicts": {j: dict(v.get(item, {})) for j, v in by_judge.items()},
            "models": identity,
            "generations_sha256": sha256_file(gen_path),
        }
        pairs.append(prefs.write(pair, "pairs-messages", {"provenance": provenance})[0])
    share = (
        prefs.side_stats([prefs.read(p, "pairs-messages") for p in pairs]).get("chosen_longer_share") if pairs else None
    )
    log(
        f"{len(pairs)} position-consistent pairs from {len(generations)} prompts; dropped: "
        + (", ".join(f"{k} {v}" for k, v in sorted(dropped.items())) or "none")
        + (f"; chosen longer in {share:.0%}" if share is not None else "")
    )
    refusals = []
    if len(pairs) < MIN_PAIRS:
        refusals.append(f"only {len(pairs)} pairs (at least {MIN_PAIRS} are needed for a preference run)")
    if length_bias(share):
        refusals.append(length_bias(share))
    if refusals and not force:
        raise UserError(
            "; ".join(refusals),
            Where(run / "judge"),
            "judge more prompts (a bigger SUITE=) or with more judges, or FORCE=1 to write them anyway",
        )
    return write(run, pairs, val, judges or sorted(by_judge), agree, dict(dropped), share, bool(refusals))


def split(pairs: list[dict], val: int | None) -> tuple[list[dict], list[dict]]:
    """A deterministic held-out set: the pairs whose item hashes lowest (VAL=, default a tenth, none under 10)."""
    n = len(pairs) // 10 if val is None else min(val, len(pairs))
    ranked = sorted(
        range(len(pairs)), key=lambda i: hashlib.sha256(pairs[i]["provenance"]["item"].encode()).hexdigest()
    )
    held = set(ranked[:n])
    return [p for i, p in enumerate(pairs) if i not in held], [p for i, p in enumerate(pairs) if i in held]


def write(
    run: Path,
    pairs: list[dict],
    val: int | None,
    judges: list[str],
    agree: str,
    dropped: dict[str, int],
    share: float | None,
    forced: bool,
) -> PrefsSection:
    train, held = split(pairs, val)
    out = run / "prefs"
    lines = lambda rows: "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)  # noqa: E731
    atomic.write_text(out / "pairs.jsonl", lines(train))
    if held:
        atomic.write_text(out / "pairs.val.jsonl", lines(held))
    section = PrefsSection(
        path="prefs/pairs.jsonl",
        val_path="prefs/pairs.val.jsonl" if held else None,
        sha256=sha256_file(out / "pairs.jsonl"),
        judges=judges,
        agree=agree,
        pairs=len(train),
        val_pairs=len(held),
        dropped=dropped,
        chosen_longer_share=share,
        forced=forced,
        at=rundir.utc_now(),
    )
    manifest.write_sections(run, prefs=section)
    return section


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    cli.add_run_arguments(parser)
    parser.add_argument("--judges", default=None, help="comma-separated judge names (default: JUDGES, else all)")
    parser.add_argument("--agree", default=None, choices=("any", "all"), help="(default: AGREE, else any)")
    parser.add_argument("--force", action="store_true", help="write a small or length-biased set (default: FORCE)")
    ns = parser.parse_args(argv)

    def body() -> None:
        s = settings.load()
        run = cli.run_from(ns, s)
        agree = ns.agree or s.agree or "any"
        if agree not in ("any", "all"):
            raise UserError(f"AGREE={agree} is not any or all", Where(key="AGREE"))
        names = [j.strip() for j in (ns.judges or s.judges or "").split(",") if j.strip()] or None
        section = build(run, names, agree, s.val, ns.force or s.force)
        print(f"wrote {run / section.path} ({section.pairs} pairs, {section.val_pairs} held out)")
        print(
            f"next: a recipe with meta.start_from: {{recipe: {manifest.read(run).recipe_name}, prefs: true}}, "
            f"or FROM_RUN={run} with datasets pointing at {run / section.path}"
        )

    return cli.main(body)


if __name__ == "__main__":
    sys.exit(main())
