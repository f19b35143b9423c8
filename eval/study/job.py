"""One run's job, the same on this machine and on a pod: train the recipe with the run's overrides, evaluate the
held-out split (lm-eval, the fine-tune and its base model), judge it against its base. On a pod it arrives as
STUDY_SPEC, base64 JSON (pod env values may not hold quotes), and its results go to the study's Hub repo."""

from __future__ import annotations

import base64
import json
import sys
from pathlib import Path

from pydantic import BaseModel

from core.errors import UserError, Where
from core.paths import REPO
from eval.study.spec import Study, StudyRun

SUITES = REPO / "eval" / "suites"


class Job(BaseModel):
    study: str
    key: str
    recipe: str
    args: str = ""
    backends: list[str] = ["hf", "base"]
    limit: int | None = None
    max_gen_toks: int = 128
    judges: list[str] = []
    suite: str | None = None  # a path relative to the repo, or absolute (local runs only)
    judge_limit: int | None = None
    judge_max_new_tokens: int | None = None
    judge_max_cost: float = 5.0
    min_consistency: float | None = None
    repo: str | None = None
    upload_adapter: bool = False

    def encode(self) -> str:
        return base64.b64encode(self.model_dump_json().encode()).decode()

    @classmethod
    def decode(cls, text: str) -> Job:
        try:
            return cls.model_validate_json(base64.b64decode(text.encode(), validate=True))
        except (ValueError, TypeError) as exc:
            raise UserError(f"STUDY_SPEC is not a study job ({str(exc)[:200]})", Where(key="STUDY_SPEC")) from None


def suite_path(study: Study, study_file: Path) -> Path | None:
    """The judge suite: a name in eval/suites, or a file relative to the study file; None: the recipe's own."""
    name = study.judge.suite
    if not name:
        return None
    if Path(name).suffix != ".jsonl":
        path = SUITES / f"{name}.jsonl"
    else:
        path = next((p for p in (study_file.parent / name, REPO / name) if p.is_file()), study_file.parent / name)
    if not path.is_file():
        known = ", ".join(sorted(p.stem for p in SUITES.glob("*.jsonl")))
        raise UserError(f"judge suite '{name}' not found", Where(study_file, key="judge.suite"), f"one of: {known}")
    return path.resolve()


def job_for(study: Study, r: StudyRun, study_file: Path, repo: str | None = None) -> Job:
    suite = suite_path(study, study_file)
    if suite is not None:
        try:
            suite_ref = str(suite.relative_to(REPO))
        except ValueError:
            suite_ref = str(suite)
    return Job(
        study=study.name,
        key=r.key,
        recipe=r.recipe,
        args=r.args,
        backends=list(study.eval.backends),
        limit=study.eval.limit,
        max_gen_toks=study.eval.max_gen_toks,
        judges=list(study.judge.judges),
        suite=suite_ref if suite is not None else None,
        judge_limit=study.judge.limit,
        judge_max_new_tokens=study.judge.max_new_tokens,
        judge_max_cost=study.judge.max_cost,
        min_consistency=study.judge.min_consistency,
        repo=repo,
        upload_adapter=study.upload_adapter,
    )


def argv(job: Job, step: str, run: Path | None = None) -> list[str]:
    """The command of one step (the same modules `make train`, `make eval` and `make judge` run)."""
    py = sys.executable
    if step == "train":
        return [py, "-m", "launch.train", job.recipe, f"--args={job.args}"]  # '=': a value may start with --
    if run is None:
        raise ValueError(f"step {step} needs the run directory")
    if step == "eval":
        out = [py, "-m", "eval.lmeval", "--run", str(run), "--backends", ",".join(job.backends)]
        out += ["--max-gen-toks", str(job.max_gen_toks)] + (["--limit", str(job.limit)] if job.limit else [])
        return out
    if step == "judge":
        out = [py, "-m", "eval.judge", "--run", str(run), "--judges", ",".join(job.judges)]
        out += ["--max-cost", str(job.judge_max_cost)]
        if job.suite:
            out += ["--suite", str(REPO / job.suite) if not Path(job.suite).is_absolute() else job.suite]
        if job.judge_limit:
            out += ["--limit", str(job.judge_limit)]
        if job.judge_max_new_tokens:
            out += ["--max-new-tokens", str(job.judge_max_new_tokens)]
        return out
    raise ValueError(f"unknown step {step}")


def step_env(job: Job) -> dict[str, str]:
    """Variables a step reads besides its arguments (the judge's floor)."""
    return {"JUDGE_MIN_CONSISTENCY": str(job.min_consistency)} if job.min_consistency is not None else {}


def dumps(job: Job) -> str:
    return json.dumps(job.model_dump(), indent=2)
