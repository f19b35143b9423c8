"""The held-out part of a judged suite. `make prefs` draws its pairs from a training part of the prompts that were
judged and keeps the rest back; judging a run whose weights were trained on such pairs (its own training datasets,
or those of any run in its start_from chain: eval/chain.py) uses only the prompts no pair could be drawn from, so
its win rate is out of sample, and says how many that is.

The split is deterministic: the judged prompts ranked by the sha256 of their text, the first fifth of them
(HELDOUT_SHARE; at least one when there are two or more) held out, so a prompt a suite holds twice falls on one
side. Every pair's provenance carries the split (`split`: the suite and a sha256 prefix of each prompt of either part),
so a pairs file is judged right wherever it was copied; <run>/prefs/heldout.jsonl and the manifest's prefs section
record it too. Pairs written before the split existed count their own prompts as trained on."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core import manifest
from core.errors import UserError, Where
from core.sections import HeldoutRecord
from eval import chain

HELDOUT_SHARE = 0.2
RULE = "judged prompts ranked by the sha256 of their text; the first `share` of them held out"


def prompt_sha256(prompt: str) -> str:
    return hashlib.sha256(prompt.encode()).hexdigest()


def prompt_key(prompt: str) -> str:
    """What the split records per prompt: 64 bits of its sha256 (every pair carries the whole split)."""
    return prompt_sha256(prompt)[:16]


def split(items: list[dict[str, Any]], share: float = HELDOUT_SHARE) -> tuple[list[dict], list[dict]]:
    """(training part, held-out part) of judged items (dicts with a 'prompt'), each in the items' order."""
    ranked = sorted({prompt_sha256(i["prompt"]) for i in items})
    held = set(ranked[: max(1, round(share * len(ranked))) if len(ranked) > 1 else 0])
    return (
        [i for i in items if prompt_sha256(i["prompt"]) not in held],
        [i for i in items if prompt_sha256(i["prompt"]) in held],
    )


def record(suite: str | None, train: list[dict], held: list[dict], share: float = HELDOUT_SHARE) -> dict[str, Any]:
    """The split as each pair's provenance carries it."""
    return {
        "suite": suite,
        "rule": RULE,
        "share": share,
        "train": sorted({prompt_key(i["prompt"]) for i in train}),
        "heldout": sorted({prompt_key(i["prompt"]) for i in held}),
    }


@dataclass(frozen=True)
class Source:
    """A file of `make prefs` pairs that a run of the chain trained on."""

    run: str  # recipe/run of the chain that trained on it
    path: Path
    trained: frozenset[str]  # prompt_key of every prompt of the training part its pairs were drawn from

    def __str__(self) -> str:
        return f"{self.path} (trained on by {self.run})"


def _rows(path: Path) -> list[Any]:
    """The records of a JSON Lines (or JSON array) file that may be `make prefs` output; [] for other files."""
    text = path.read_text(encoding="utf-8", errors="replace") if path.suffix in (".jsonl", ".json") else ""
    if '"provenance"' not in text:
        return []
    if path.suffix == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError:
            return []
        return data if isinstance(data, list) else []
    rows = []
    for raw in text.splitlines():
        if '"provenance"' in raw:
            try:
                rows.append(json.loads(raw))
            except json.JSONDecodeError:
                continue  # make data-check names bad lines; here only make prefs' own rows matter
    return rows


def _prompt(row: dict) -> str | None:
    users = [m.get("content") for m in row.get("messages") or [] if isinstance(m, dict) and m.get("role") == "user"]
    return users[-1] if users and isinstance(users[-1], str) else None


def read_source(run: str, path: Path) -> Source | None:
    trained: set[str] = set()
    for row in _rows(path):
        prov = row.get("provenance") if isinstance(row, dict) else None
        if not isinstance(prov, dict) or "verdicts" not in prov:  # not a pair make prefs wrote
            continue
        split_ = prov.get("split")
        if isinstance(split_, dict):
            trained |= set(split_.get("train") or [])
        prompt = _prompt(row)
        if prompt is not None:
            trained.add(prompt_key(prompt))
    return Source(run, path, frozenset(trained)) if trained else None


def sources(run: Path) -> list[Source]:
    """The `make prefs` pairs the chain of `run` trained on. A pairs file its manifest names that is gone is an
    error: without it, which prompts are held out cannot be told."""
    found = []
    for link, path, recorded in chain.training_files(run):
        if path is None:
            start = link.manifest.train.start_from
            if start is not None and start.prefs and Path(start.prefs) == Path(recorded):
                raise UserError(
                    f"run {link.label} trained on the preference pairs {recorded}, which are gone: which suite "
                    "prompts they were drawn from (and so which are held out) cannot be told",
                    Where(link.run / manifest.MANIFEST, key="train.datasets"),
                    f"restore that file (make prefs RUN={start.run} writes it again from the same judging)",
                )
            continue
        source = read_source(link.label, path)
        if source is not None:
            found.append(source)
    return found


def restrict(
    run: Path, items: list[dict[str, Any]], log=print, extra: list[Source] | None = None
) -> tuple[list[dict[str, Any]], HeldoutRecord | None]:
    """The items to judge `run` on: those no `make prefs` pair its chain trained on could be drawn from (for the
    suite the pairs came from, its held-out part), nor any prompt of `extra` (the prompt sets its chain's GRPO runs
    trained on: eval/grpo_data.py sources), and the record of it; all of them when it trained on none."""
    found = sources(run) + list(extra or [])
    if not found:
        return items, None
    trained = frozenset().union(*(s.trained for s in found))
    kept = [i for i in items if prompt_key(i["prompt"]) not in trained]
    if not kept:
        raise UserError(
            f"every prompt of this suite is in the training part of the pairs or prompts {found[0]}: a win rate "
            "on them would be in-sample",
            Where(key="SUITE"),
            "judge on the suite make prefs was given (its held-out part is judged) or on another suite",
        )
    held = HeldoutRecord(n=len(kept), of=len(items), excluded=len(items) - len(kept), sources=[str(s) for s in found])
    log(
        f"judging the held-out part only: {held.n} of {held.of} prompts (the other {held.excluded} are the training "
        f"part of the preference pairs or GRPO prompts this run's chain trained on: {'; '.join(held.sources)})"
    )
    return kept, held
