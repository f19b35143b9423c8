"""Where a study lives and how far each run got. OUTPUTS/studies/<study>/ holds one folder per run (that run's
OUTPUTS: its run directory is <run>/runs/<recipe>/<timestamp>, found through LATEST as everywhere else), the
step logs (logs/<run>/<step>.log), the report, and state.json (attempts, pods, cost: what no manifest says;
state.json.bak is the copy it last replaced). One `make study` of a study at a time holds .study.lock.
Whether a run is finished is read from its manifest, never from state.json: trained (train completed),
evaluated (lm_eval holds every backend asked for), judged (every judge, no failed request)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core import atomic, manifest, rundir
from core.errors import UserError, Where
from eval.study.job import Job
from eval.study.spec import Study, StudyRun

STEPS = ("train", "eval", "judge")


@dataclass(frozen=True)
class StudyPaths:
    root: Path

    @classmethod
    def of(cls, study: Study, outputs: Path) -> StudyPaths:
        return cls(outputs / "studies" / study.name)

    def outputs(self, r: StudyRun) -> Path:
        """The run's own OUTPUTS (launch.train files the run directory, LATEST and caches under it)."""
        return self.root / r.key

    def log(self, r: StudyRun, step: str) -> Path:
        return self.root / "logs" / r.key / f"{step}.log"

    @property
    def state_file(self) -> Path:
        return self.root / "state.json"

    @property
    def state_backup(self) -> Path:
        return self.root / "state.json.bak"

    @property
    def lock_file(self) -> Path:
        return self.root / ".study.lock"

    @property
    def report(self) -> Path:
        return self.root / "report"

    @property
    def hub(self) -> Path:
        return self.root / "hub"


def run_dir(paths: StudyPaths, r: StudyRun) -> Path | None:
    """The run's completed run directory (LATEST), or None."""
    pointer = paths.outputs(r) / "runs" / rundir.recipe_name(r.recipe) / rundir.LATEST
    if not pointer.is_file():
        return None
    run = pointer.parent / pointer.read_text().strip()
    return run if (run / manifest.MANIFEST).is_file() else None


def started_dir(paths: StudyPaths, r: StudyRun) -> Path | None:
    """The newest run directory of this run, finished or not (for progress while it trains)."""
    base = paths.outputs(r) / "runs" / rundir.recipe_name(r.recipe)
    found = sorted(p for p in base.glob("*") if (p / manifest.MANIFEST).is_file()) if base.is_dir() else []
    return found[-1] if found else None


def progress(job: Job, run: Path | None) -> dict[str, bool]:
    """Which steps of a run are done, from its manifest."""
    done = dict.fromkeys(STEPS, False)
    if run is None:
        return done
    try:
        m = manifest.read(run)
    except UserError:
        return done
    done["train"] = m.train.status == "completed"
    if m.lm_eval:
        have = {r.backend for r in m.lm_eval.results} | ({"base"} if m.lm_eval.base else set())
        done["eval"] = set(job.backends) <= have and m.lm_eval.limit == job.limit
    if not job.judges:
        done["judge"] = True
    elif m.judge:
        done["judge"] = all(
            j in m.judge.judges and not m.judge.judges[j].get("requests", {}).get("failed") for j in job.judges
        )
    return done


def read_state(paths: StudyPaths) -> dict[str, Any]:
    """The study's records; a state.json that cannot be read is an error naming it (it holds what was spent on
    pods, which nothing else records), never a silent fresh start."""
    if not paths.state_file.is_file():
        return {"runs": {}}
    text = paths.state_file.read_text(encoding="utf-8", errors="replace")
    try:
        data = json.loads(text)
        problem = None if isinstance(data, dict) and isinstance(data.get("runs"), dict) else "it holds no 'runs'"
    except json.JSONDecodeError as exc:
        data, problem = None, f"not valid JSON ({exc.msg}, line {exc.lineno})"
    if problem is None:
        return data
    backup = paths.state_backup
    hint = (
        f"the last good copy is {backup}: cp {backup} {paths.state_file} goes on from it"
        if backup.is_file()
        else "no earlier copy was kept; delete it to start the records afresh (what was spent on pods is lost)"
    )
    raise UserError(f"the study's state is corrupt: {problem}", Where(paths.state_file), hint)


def write_state(paths: StudyPaths, state: dict[str, Any]) -> None:
    """Replace state.json, first keeping the one it replaces (when readable) as state.json.bak."""
    if paths.state_file.is_file():
        try:
            read_state(paths)
        except UserError:
            pass  # a corrupt state is never the last good one
        else:
            atomic.write_text(paths.state_backup, paths.state_file.read_text(encoding="utf-8", errors="replace"))
    atomic.write_json(paths.state_file, state)


@contextmanager
def hold(paths: StudyPaths, name: str) -> Iterator[None]:
    """One `make study` of a study at a time: a second one (same OUTPUTS) is refused, naming the holder."""
    try:
        with atomic.held(paths.lock_file):
            yield
    except atomic.Held as exc:
        raise UserError(
            f"study {name} is already running ({exc.holder})",
            Where(paths.lock_file),
            "wait for it to finish (make study-report shows its progress); a killed one's lock is taken over",
        ) from None
