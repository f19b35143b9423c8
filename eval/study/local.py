"""A study on this machine: one run after another, each step in its own process (launch.train, then eval.lmeval,
then eval.judge, as `make train/eval/judge` run them), with that run's folder as OUTPUTS. A finished run (by
its manifest) is skipped; an unfinished one goes on from where it stopped (launch.train resumes its
unfinished run from the last checkpoint; evaluation and judging re-run or resume from their caches); a run
whose step fails is tried again `retries` times, then reported, and the study goes on with the next."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

from core import child, childenv
from core.paths import REPO
from eval.study import state
from eval.study.job import Job, argv, step_env
from eval.study.progress import Progress, train_progress
from eval.study.spec import StudyRun

# variables of the study's own command that must not leak into a run's steps (they get explicit arguments)
NOT_PASSED = {"RUN", "RECIPE", "ARGS", "LIMIT", "BACKENDS", "SUITE", "JUDGES", "MAX_COST", "STUDY", "RUNPOD", "OUTPUTS"}
POLL_S = 1.0


def env_for(paths: state.StudyPaths, r: StudyRun, job: Job) -> dict[str, str]:
    env = {k: v for k, v in childenv.child_env().items() if k not in NOT_PASSED}
    env["OUTPUTS"] = str(paths.outputs(r))
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH", "")) if p)
    env.update(step_env(job))
    return env


def run_step(cmd: list[str], env: dict[str, str], log: Path, poll) -> int:
    """Run one step with its output appended to `log`; `poll()` runs every second meanwhile (progress)."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "a", encoding="utf-8") as fh:
        fh.write(f"$ {' '.join(cmd)}\n")
        fh.flush()
        proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=fh, stderr=subprocess.STDOUT)
        try:
            while proc.poll() is None:
                poll()
                time.sleep(POLL_S)
        except BaseException:
            child.stop_tree(proc.pid, grace_s=30)  # the step, and the trainer it started
            raise
    return proc.returncode


def tail(log: Path, lines: int = 6) -> str:
    if not log.is_file():
        return ""
    text = [line for line in log.read_text(encoding="utf-8", errors="replace").splitlines() if line.strip()]
    return "\n".join(text[-lines:])


def attempt(paths: state.StudyPaths, r: StudyRun, job: Job, prog: Progress) -> tuple[bool, str | None]:
    """Every step still to do, in order; (all done?, the failed step's log)."""
    env = env_for(paths, r, job)
    started = time.time()
    for step in state.STEPS:
        run = state.run_dir(paths, r)
        if state.progress(job, run)[step]:
            continue
        prog.update(r.key, state={"train": "training", "eval": "evaluating", "judge": "judging"}[step], note="")

        def poll(step: str = step) -> None:
            elapsed = f"local, {int(time.time() - started) // 60}m{int(time.time() - started) % 60:02d}s"
            if step == "train":
                step_s, loss = train_progress(state.started_dir(paths, r))
                prog.update(r.key, step=step_s, loss=loss, cost=elapsed)
            else:
                prog.update(r.key, cost=elapsed)

        log = paths.log(r, step)
        rc = run_step(argv(job, step, run), env, log, poll)
        if rc != 0:
            return False, str(log)
    return True, None


def run_all(paths: state.StudyPaths, runs: list[StudyRun], jobs: dict[str, Job], retries: int, prog: Progress):
    """Each run in turn; returns {key: failure text} for the runs that failed every attempt."""
    failed: dict[str, str] = {}
    st = state.read_state(paths)
    for r in runs:
        job = jobs[r.key]
        if all(state.progress(job, state.run_dir(paths, r)).values()):
            prog.update(r.key, state="done", note="finished before: skipped")
            continue
        for n in range(1 + retries):
            ok, log = attempt(paths, r, job, prog)
            entry = st["runs"].setdefault(r.key, {})
            entry["attempts"] = entry.get("attempts", 0) + 1
            if ok:
                run = state.run_dir(paths, r)
                step_s, loss = train_progress(run)
                prog.update(r.key, state="done", step=step_s, loss=loss, note=str(run.relative_to(paths.root)))
                entry.update(status="done", error=None)
                break
            last = n == retries
            prog.update(r.key, state="failed", note=f"{Path(log).name}: " + ("reported" if last else "trying again"))
            entry.update(status="failed", error=f"{log}\n{tail(Path(log))}")
            if last:
                failed[r.key] = entry["error"]
        state.write_state(paths, st)
    return failed
