"""A study's pod (its command: python -m eval.study.pod): the run's job from STUDY_SPEC (eval/study/job.py),
each step as on a workstation (train, evaluate on the pod's GPU, judge), then its results uploaded to the
study's private Hub repo under the run's key (also when a step failed: the logs say why), then the pod stops
itself (ON_FINISH, through its provider's end_machine: launch/cloud/base.py). Everything printed also goes to
<run>/pod.log, which is uploaded with the results. Credentials (HF_TOKEN, judge keys) come from RunPod secrets."""

from __future__ import annotations

import os
import sys
import threading
from pathlib import Path

from core import childenv, settings
from core.errors import UserError, Where
from core.paths import REPO
from eval.study import hub, state
from eval.study.job import Job, argv, step_env
from eval.study.progress import train_progress

PROGRESS_S = 120.0  # how often the pod reports step and loss to the Hub (STUDY_POLL_S changes it)


def outputs_of(job: Job, root: Path) -> Path:
    """The run's folder on the pod's volume (the same layout as the study's local folder for it)."""
    return root / "studies" / job.study / job.key


def work(job: Job, outputs: Path, tee, env: dict[str, str]) -> int:
    """Every step not yet done (a pod restarted on the same volume goes on); the first failure's status."""
    pointer_dir = outputs / "runs"
    for step in state.STEPS:
        run = _latest(pointer_dir)
        if state.progress(job, run)[step]:
            tee.say(f"{step}: done before")
            continue
        rc = tee.run(argv(job, step, run), env)
        if rc != 0:
            tee.say(f"error: {step} exited with status {rc}")
            return rc
    return 0


def report_progress(s, job: Job, outputs: Path, stop: threading.Event, every: float) -> None:
    """Every `every` seconds until stopped: the training step and loss, to <key>/progress.json on the Hub."""
    last = None
    while not stop.wait(every):
        started = sorted(p for p in (outputs / "runs").glob("*/*") if p.is_dir()) if (outputs / "runs").is_dir() else []
        step, loss = train_progress(started[-1] if started else None)
        if step and (step, loss) != last:
            try:
                hub.put_progress(s, job.repo, job.key, {"step": step, "loss": loss})
                last = (step, loss)
            except UserError:
                pass  # the table waits for the next report


def _latest(runs: Path) -> Path | None:
    pointers = sorted(runs.glob("*/LATEST")) if runs.is_dir() else []
    if not pointers:
        return None
    run = pointers[0].parent / pointers[0].read_text().strip()
    return run if run.is_dir() else None


def main() -> int:
    from launch.cloud import registry
    from launch.cloud.base import ON_FINISH, finish_mode
    from launch.cloud.tee import Tee

    try:
        provider = registry.get(os.environ.get("CLOUD"))
    except UserError as exc:  # the machine must still end itself: its default provider does it
        print(f"error: {exc}; ending the machine through the default provider", flush=True)
        provider = registry.get(None)
    os.environ.setdefault("OUTPUTS", provider.outputs_on_machine())  # as the machine's entrypoint
    s = settings.load()
    pod_id = provider.machine_id(s)
    on_finish = s.on_finish if s.on_finish in ON_FINISH else "stop"  # a typo must not leave a failed pod billing
    rc = 2
    tee = Tee(s.outputs / "pods" / f"{pod_id or 'local'}.log")  # until the job says where its run lives
    try:
        if not s.study_spec:
            raise UserError(
                "STUDY_SPEC is not set: this command runs a study's job on its pod", Where(key="STUDY_SPEC")
            )
        job = Job.decode(s.study_spec)
        outputs = outputs_of(job, s.outputs)
        tee = Tee(outputs / "pod.log")
        on_finish = finish_mode(s.on_finish)
        if not job.repo:
            raise UserError("the job names no results repo", Where(key="STUDY_REPO"))
        hub.ensure_repo(s, job.repo)  # HF_TOKEN there and able to write, before any GPU time is spent
        env = childenv.child_env(
            extra={
                "OUTPUTS": str(outputs),
                "PYTHONPATH": os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p),
                **step_env(job),
            }
        )
        for name in ("RUN", "RECIPE", "ARGS", "LIMIT", "BACKENDS", "SUITE", "JUDGES"):
            env.pop(name, None)
        tee.say(f"study {job.study}, run {job.key}: {job.recipe} {job.args}")
        stop = threading.Event()
        every = PROGRESS_S if s.study_poll_s is None else max(s.study_poll_s, 1.0)
        reporter = threading.Thread(target=report_progress, args=(s, job, outputs, stop, every), daemon=True)
        reporter.start()
        try:
            rc = work(job, outputs, tee, env)
        finally:
            stop.set()
            reporter.join(timeout=30)
        tee.say(f"uploading results to {job.repo} under {job.key}/")
        tee.say("uploaded: " + hub.upload(s, job.repo, job.key, outputs, adapter=job.upload_adapter))
    except UserError as exc:
        tee.say(f"error: {exc}")
        rc = rc or 2
    provider.end_machine(s, tee, on_finish, pod_id)
    return rc


if __name__ == "__main__":
    sys.exit(main())
