"""The one live progress table of a study (rich): state, step, loss and cost so far per run. On a terminal it
redraws in place; anywhere else (a CI log, a pipe) each change is one plain line, so the log reads as a story."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from eval.study.spec import StudyRun

# a tqdm bar without a label (the trainer's and the evaluation's; dataset bars say what they count), n/total
_BAR = re.compile(r"(?:^|\r|\n)\s*\d+%\|[^|\n\r]*\| (\d+)/(\d+) \[[^\]\n\r]*(?:it/s|s/it)\]")
_MAX_STEPS = re.compile(r'"max_steps": (\d+)')  # the resolved config axolotl prints before training
_LOSS = re.compile(r"'loss': '?([0-9.]+(?:e-?\d+)?)")
FIELDS = ("state", "step", "loss", "cost", "note")
HEAD = TAIL = 200_000


def train_progress(run: Path | None) -> tuple[str, str]:
    """(step "n/total", last logged loss) from a run's training log. The step is the trainer's progress bar:
    the last bar whose total is the run's max_steps (printed in the config; else the first unlabeled bar's
    total, the training bar, which starts before any evaluation), so an evaluation's bar or a dataset's
    never shows as the step."""
    log = run / "logs" / "train.log" if run else None
    if log is None or not log.is_file():
        return "", ""
    size = log.stat().st_size
    with open(log, "rb") as fh:
        head = fh.read(HEAD).decode("utf-8", "replace")
        fh.seek(max(0, size - TAIL))
        tail = fh.read().decode("utf-8", "replace")
    m = _MAX_STEPS.search(head)
    first = _BAR.search(head) or _BAR.search(tail)
    total = m.group(1) if m else (first.group(2) if first else None)
    steps = [n for n, of in _BAR.findall(tail) if of == total]
    losses = _LOSS.findall(tail)
    return (f"{steps[-1]}/{total}" if steps else ""), (f"{float(losses[-1]):.3f}" if losses else "")


class Progress:
    def __init__(self, runs: list[StudyRun], title: str, console: Any = None):
        from rich.console import Console

        self.title = title
        self.rows = {r.key: dict.fromkeys(FIELDS, "") | {"state": "waiting"} for r in runs}
        self.console = console or Console()
        self.live = None

    def __enter__(self) -> Progress:
        if self.console.is_terminal:
            from rich.live import Live

            self.live = Live(self.table(), console=self.console, refresh_per_second=2)
            self.live.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        if self.live is not None:
            self.live.update(self.table())
            self.live.__exit__(*exc)
        else:
            self.console.print(self.table())

    def update(self, key: str, **fields: Any) -> None:
        row = self.rows[key]
        new = {k: "" if v is None else str(v) for k, v in fields.items()}
        if all(row.get(k) == v for k, v in new.items()):
            return
        row.update(new)
        if self.live is not None:
            self.live.update(self.table())
        elif "state" in new or "note" in new:  # steps and losses change too often for a log
            self.console.print(f"{key}: {row['state']}" + (f" ({row['note']})" if row["note"] else ""), highlight=False)

    def say(self, text: str) -> None:
        if self.live is not None:
            self.live.console.print(text, highlight=False)
        else:
            self.console.print(text, highlight=False)

    def table(self):
        from rich.table import Table

        t = Table(title=self.title)
        for name in ("run", *FIELDS):
            t.add_column(name, overflow="fold")
        for key, row in self.rows.items():
            t.add_row(key, *(row[f] for f in FIELDS))
        return t
