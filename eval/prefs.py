"""`make prefs RUN=<sft run> [JUDGES=a,b] [AGREE=any|all] [VAL=n] [FORCE=1]`: preference pairs from a run's
judged generations (make judge): its generation cache (both models' answer per prompt) and judge rows.

A pair is kept only where a judge preferred the same answer in BOTH presentation orders (position-consistent);
a tie, an invalid or failed verdict, or an order flip drops the prompt. With several judges, AGREE=any (default)
keeps a prompt when at least one judge is position-consistent and none is consistent the other way; AGREE=all
needs every judge consistent on the same side. Each pair carries its provenance: the judges, both verdicts of
each, the identities of the generating models (final adapter sha256, base model) and the suite's split. Pairs go
to <run>/prefs/pairs.jsonl (+ pairs.val.jsonl, VAL= pairs held out, deterministic) in pairs-messages format (a
recipe's type chat_template.default reads it) and the manifest's `prefs` section.

Pairs are drawn from a training part of the judged prompts only; the held-out part (a fifth, deterministic:
eval/prefs_split.py) is written to <run>/prefs/heldout.jsonl and kept for judging the tuned run, which make
judge then does on that part alone. A verdict is joined only to the texts it was given for: a judge row whose
recorded prompt or answer hashes differ from the generation cache (make judge ran again with another SEED or
MAX_NEW_TOKENS and did not finish, or a file was edited) is refused, naming the file and line.

Refused unless FORCE=1, with the numbers: fewer than MIN_PAIRS pairs, or a set where one side is the longer
in more than 70 % of pairs (judges favour length; such a set teaches length).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core import atomic, cli, manifest, rundir
from core.errors import UserError, Where
from core.hashing import sha256_file
from core.manifest import PrefsSection
from core.settings import Settings
from data import preferences as prefs
from data.tools.preference_data import length_bias
from eval import prefs_split
from eval.judged_io import given_for, read_cache_lines

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


def verdicts(
    run: Path, files: list[str], judges: list[str] | None, generations: dict[str, dict[str, Any]], gen_path: Path
) -> dict[str, dict[str, dict[str, str]]]:
    """judge -> item -> order -> verdict (candidate | baseline | tie | invalid); failed requests count invalid.
    A row that was not given for the prompt and answers the generation cache holds for its item is refused."""
    out: dict[str, dict[str, dict[str, str]]] = defaultdict(lambda: defaultdict(dict))
    for rel in files:
        for line, row in read_cache_lines(run / rel):
            if judges and row.get("judge") not in judges:
                continue
            problem = given_for(row, generations.get(row.get("item")))
            if problem:
                raise UserError(
                    f"this verdict cannot be joined to {gen_path.name}: {problem}",
                    Where(run / rel, line),
                    f"make judge RUN={run} again: it judges the answers it generates (those already judged cost "
                    "nothing), then make prefs",
                )
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
        if not flat:
            return None, "not judged"
        return None, "tie or invalid" if set(flat) <= {"tie", "invalid"} else "position-inconsistent"
    if agree == "all" and not all(picks.values()):
        return None, "not every judge position-consistent"
    return next(iter(sides)), "kept"


def build(
    run: Path,
    judges: list[str] | None,
    agree: str,
    val: int | None,
    force: bool,
    log=print,
    share: float = prefs_split.HELDOUT_SHARE,
) -> PrefsSection:
    m = manifest.read(run)
    if m.judge is None:
        raise UserError(
            "this run has not been judged",
            Where(run / manifest.MANIFEST),
            f"make judge RUN={run} JUDGES=... first (both orders per prompt)",
        )
    gen_path, generations = load_generations(run, m.judge)
    by_judge = verdicts(run, m.judge.files, judges, generations, gen_path)
    train_part, held_part = prefs_split.split(list(generations.values()), share)
    split_record = prefs_split.record(m.judge.suite, train_part, held_part, share)
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
    for gen in train_part:
        item = gen["item"]
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
            "split": split_record,
        }
        pairs.append(prefs.write(pair, "pairs-messages", {"provenance": provenance})[0])
    share_longer = (
        prefs.side_stats([prefs.read(p, "pairs-messages") for p in pairs]).get("chosen_longer_share") if pairs else None
    )
    log(
        f"{len(pairs)} position-consistent pairs from the {len(train_part)} prompts of the training part "
        f"({len(held_part)} held out for judging the tuned run: prefs/heldout.jsonl); dropped: "
        + (", ".join(f"{k} {v}" for k, v in sorted(dropped.items())) or "none")
        + (f"; chosen longer in {share_longer:.0%}" if share_longer is not None else "")
    )
    refusals = []
    if len(pairs) < MIN_PAIRS:
        refusals.append(f"only {len(pairs)} pairs (at least {MIN_PAIRS} are needed for a preference run)")
    if length_bias(share_longer):
        refusals.append(length_bias(share_longer))
    if refusals and not force:
        raise UserError(
            "; ".join(refusals),
            Where(run / "judge"),
            "judge more prompts (a bigger SUITE=) or with more judges, or FORCE=1 to write them anyway",
        )
    picked = Picked(judges or sorted(by_judge), agree, dict(dropped), share_longer, bool(refusals))
    return write(run, pairs, val, picked, held_part, split_record)


@dataclass(frozen=True)
class Picked:
    """How the pairs were picked, for the manifest."""

    judges: list[str]
    agree: str
    dropped: dict[str, int]
    chosen_longer_share: float | None
    forced: bool


def val_split(pairs: list[dict], val: int | None) -> tuple[list[dict], list[dict]]:
    """A deterministic held-out set of pairs (the DPO run's eval loss): the pairs whose item hashes lowest (VAL=,
    default a tenth, none under 10). All of them come from the suite's training part."""
    n = len(pairs) // 10 if val is None else min(val, len(pairs))
    ranked = sorted(
        range(len(pairs)), key=lambda i: hashlib.sha256(pairs[i]["provenance"]["item"].encode()).hexdigest()
    )
    held = set(ranked[:n])
    return [p for i, p in enumerate(pairs) if i not in held], [p for i, p in enumerate(pairs) if i in held]


def write(
    run: Path, pairs: list[dict], val: int | None, picked: Picked, held_part: list[dict], split_record: dict
) -> PrefsSection:
    train, held = val_split(pairs, val)
    out = run / "prefs"
    lines = lambda rows: "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)  # noqa: E731
    atomic.write_text(out / "pairs.jsonl", lines(train))
    if held:
        atomic.write_text(out / "pairs.val.jsonl", lines(held))
    kept_back = [
        {k: g[k] for k in ("item", "suite", "config", "prompt") if k in g}
        | {"prompt_sha256": prefs_split.prompt_sha256(g["prompt"])}
        for g in held_part
    ]
    atomic.write_text(out / "heldout.jsonl", lines(kept_back))
    section = PrefsSection(
        path="prefs/pairs.jsonl",
        val_path="prefs/pairs.val.jsonl" if held else None,
        sha256=sha256_file(out / "pairs.jsonl"),
        judges=picked.judges,
        agree=picked.agree,
        pairs=len(train),
        val_pairs=len(held),
        dropped=picked.dropped,
        chosen_longer_share=picked.chosen_longer_share,
        forced=picked.forced,
        at=rundir.utc_now(),
        suite=split_record["suite"],
        train_prompts=len(split_record["train"]),
        heldout_prompts=len(split_record["heldout"]),
        heldout_path="prefs/heldout.jsonl",
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

    def body(s: Settings) -> None:
        run = cli.run_from(ns, s)
        agree = ns.agree or s.agree or "any"
        if agree not in ("any", "all"):
            raise UserError(f"AGREE={agree} is not any or all", Where(key="AGREE"))
        names = [j.strip() for j in (ns.judges or s.judges or "").split(",") if j.strip()] or None
        section = build(run, names, agree, s.val, ns.force or s.force)
        print(
            f"wrote {run / section.path} ({section.pairs} pairs, {section.val_pairs} held out for the eval loss) from "
            f"{section.train_prompts} prompts; {section.heldout_prompts} kept back for judging the tuned run: "
            f"{run / section.heldout_path}"
        )
        print(
            f"next: a recipe with meta.start_from: {{recipe: {manifest.read(run).recipe_name}, prefs: true}}, "
            f"or FROM_RUN={run} with datasets pointing at {run / section.path}"
        )

    return cli.main(body)


if __name__ == "__main__":
    sys.exit(main())
