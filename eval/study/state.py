"""Where a study lives and how far each run got. OUTPUTS/studies/<study>/ holds one folder per run (that run's
OUTPUTS: its run directory is <run>/runs/<recipe>/<timestamp>, found through LATEST as everywhere else), the
step logs (logs/<run>/<step>.log), the report, and state.json (attempts, pods, cost: what no manifest says).
Whether a run is finished is read from its manifest, never from state.json: trained (train completed),
evaluated (lm_eval holds every backend asked for), judged (every judge, no failed request)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core import atomic, manifest, rundir
from core.errors import UserError
from core.paths import outputs_dir
from eval.study.job import Job
from eval.study.spec import Study, StudyRun

STEPS = ("train", "eval", "judge")


@dataclass(frozen=True)
class StudyPaths:
    root: Path

    @classmethod
    def of(cls, study: Study) -> StudyPaths:
        return cls(outputs_dir() / "studies" / study.name)

    def outputs(self, r: StudyRun) -> Path:
        """The run's own OUTPUTS (launch.train files the run directory, LATEST and caches under it)."""
        return self.root / r.key

    def log(self, r: StudyRun, step: str) -> Path:
        return self.root / "logs" / r.key / f"{step}.log"

    @property
    def state_file(self) -> Path:
        return self.root / "state.json"

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
    if not paths.state_file.is_file():
        return {"runs": {}}
    try:
        return json.loads(paths.state_file.read_text())
    except json.JSONDecodeError:
        return {"runs": {}}  # state.json only holds what can be rebuilt (attempts, pod ids): start it afresh


def write_state(paths: StudyPaths, state: dict[str, Any]) -> None:
    atomic.write_json(paths.state_file, state)
