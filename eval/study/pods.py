"""RUNPOD=1: one pod per run on the cloud CLOUD names (default runpod; only through launch/cloud/base.py's
Provider and Cloud), in parallel, within MAX_COST. A pod is launched only when the plan's estimate fits in
what is left; as the plan is a lower bound, every poll also reads each live pod's spend from the cloud's own
price (RunPod's costPerHr) and uptime, and once the study's spend (every pod's, ended or live) reaches MAX_COST the live pods
are terminated: the cap overshoots by at most one poll interval (STUDY_POLL_S) times the running pods' price.
Each pod is the request `make cloud-up` builds (RunPod's: launch/cloud/runpod, sized by the plan, secrets as RunPod
references, ON_FINISH=terminate) with the run's job in STUDY_SPEC, on which the pod's entrypoint (after the
bootstrap, or a pre-built image's CMD) runs the study's pod job (python -m eval.study.pod: train, evaluate,
judge, upload the results to the study's private Hub repo, stop). The study polls the pods, collects each
run's results from the Hub when its pod is gone, tries a failed run again `retries` times, and records pods
and spending in state.json, so a re-run neither launches a pod twice nor forgets what was spent."""

from __future__ import annotations

import time
from typing import Any

from core import rundir
from core.errors import UserError, Where
from core.settings import Settings
from eval.study import hub, state
from eval.study.job import Job
from eval.study.progress import Progress
from eval.study.spec import Study, StudyRun
from launch.cloud import registry
from launch.cloud.base import Machine, Provider, StudyMachine

POD_OVERHEAD_H = 0.25  # image start, model download, evaluation and judging: beyond the plan's training time
POLL_S = 30.0  # STUDY_POLL_S; also the cap's overshoot: this long at the running pods' price


def secrets_for(job: Job) -> list[str]:
    """The RunPod secrets a pod needs: HF_TOKEN (the upload) and each API judge's key."""
    from eval.judge import judge_specs

    names = ["HF_TOKEN"] + [spec["key_env"] for spec in judge_specs(job.judges).values() if spec.get("key_env")]
    return list(dict.fromkeys(names))


def request(study: Study, r: StudyRun, job: Job, s: Settings, provider: Provider) -> tuple[StudyMachine, float, float]:
    """(the machine the provider plans for one run, estimated USD, estimated hours): `make cloud-up`'s request
    (sized by the plan, secrets by reference, a per-run name) running the study's job."""
    if rundir.recipe_name(r.recipe) != r.recipe:
        raise UserError(
            f"run '{r.key}' uses a recipe file ({r.recipe}); a pod has only the repo's recipes",
            Where(key=f"{r.where}.recipe"),
            "add the recipe to recipes/ (and commit it), or run the study locally",
        )
    env = {"STUDY_SPEC": job.encode(), "STUDY_RUN": r.key, "STUDY_REPO": job.repo or "", "CLOUD": provider.name}
    planned = provider.study_machine(
        r.recipe,
        s,
        args=r.args,
        gpu=study.budget.gpu or s.gpu,
        gpus=study.budget.gpus or s.gpus,
        secrets=secrets_for(job),
        env=env,  # STUDY_SPEC: the machine's entrypoint runs the study's job (eval.study.pod)
        name=provider.machine_name(f"{study.name}-{r.key}"),
    )
    usd = planned.usd + POD_OVERHEAD_H * planned.usd_per_hour
    return planned, usd, planned.hours + POD_OVERHEAD_H


def record_spend(machine: Machine | None, rec: dict[str, Any]) -> None:
    """A pod record's spend so far from the cloud's own figures: its price (cost_per_hr) times its uptime. A pod
    that is gone keeps what was last read; a pod's uptime starts again at 0 when it restarts, so what the earlier
    start spent is banked first."""
    if machine is None:
        return
    uptime, price = float(machine.uptime_s or 0), float(machine.cost_per_hr or 0)
    if uptime < rec.get("uptime_s", 0.0):
        rec["banked_usd"] = rec["spent_usd"]
    rec.update(uptime_s=uptime, price_per_hr=price)
    rec["spent_usd"] = round(max(rec["spent_usd"], rec.get("banked_usd", 0.0) + uptime / 3600 * price), 4)


def spent(entries: dict[str, dict[str, Any]]) -> float:
    """What the study's pods have spent, ended or live."""
    return sum(p["spent_usd"] for e in entries.values() for p in e.get("pods", []))


def committed(entries: dict[str, dict[str, Any]]) -> float:
    """What the study has spent or may still spend: a live pod counts its estimate until it has spent more."""
    total = 0.0
    for e in entries.values():
        for p in e.get("pods", []):
            total += p["spent_usd"] if p.get("ended") else max(p["estimate_usd"], p["spent_usd"])
    return total


def _live(e: dict[str, Any]) -> dict[str, Any] | None:
    return next((p for p in e["pods"] if not p.get("ended")), None)


def run_all(
    study: Study, paths: state.StudyPaths, runs: list[StudyRun], jobs: dict[str, Job], s: Settings, prog: Progress
) -> tuple[dict[str, str], dict[str, str]]:
    """({key: why it failed}, {key: why the budget stopped it})."""
    provider = registry.get(s.cloud)
    cloud = provider.machines(s)
    budget = s.max_cost if s.max_cost is not None else study.budget.max_cost
    if budget is None:
        raise UserError(
            "RUNPOD=1 needs a budget", Where(key="MAX_COST"), "MAX_COST=<USD>, or budget.max_cost in the study"
        )
    repo = next(iter(jobs.values())).repo
    if not repo:
        raise UserError("RUNPOD=1 needs a results repo", Where(key="STUDY_REPO"), "STUDY_REPO=me/x, or hub_repo: me/x")
    st = state.read_state(paths)
    entries = st["runs"]
    poll_s = POLL_S if s.study_poll_s is None else s.study_poll_s
    st["budget"] = {"max_cost": budget, "poll_s": poll_s}  # the report shows the spend against it
    failed: dict[str, str] = {}
    stopped: dict[str, str] = {}
    todo = []
    for r in runs:
        e = entries.setdefault(r.key, {"pods": []})
        e.setdefault("pods", [])
        if state.run_dir(paths, r) is None and not _live(e) and hub.collect(s, repo, r.key, paths.root):
            prog.say(f"{r.key}: results found on {repo}")
        if all(state.progress(jobs[r.key], state.run_dir(paths, r)).values()):
            prog.update(r.key, state="done", note="finished before: skipped", cost=_cost(e))
            continue
        e["tries"] = 0  # this invocation's attempts
        todo.append(r)
    pending = {r.key: r for r in todo}
    while pending:
        polled = {}  # every live pod first, so the cap sees the whole study's spend of this poll
        for key in pending:
            live = _live(entries[key])
            if live is not None:
                polled[key] = cloud.get(live["id"])
                record_spend(polled[key], live)
        total = spent(entries)
        for key, r in list(pending.items()):
            e = entries[key]
            live = _live(e)
            if live is None:
                if e["tries"] > study.retries:
                    failed[key] = e.get("error") or "failed"
                    pending.pop(key)
                    continue
                planned, usd, hours = request(study, r, jobs[key], s, provider)
                if committed(entries) + usd > budget:
                    note = f"not launched: ${committed(entries):.2f} committed + ${usd:.2f} > MAX_COST ${budget:.2f}"
                    stopped[key] = "not launched (budget)"
                    prog.update(key, state="budget stop", note=note, cost=_cost(e))
                    e.update(status="budget stop", error=note)
                    pending.pop(key)
                    continue
                made = cloud.create(planned.request)
                e["tries"] += 1
                e.update(status="running", error=None)
                e["pods"].append(
                    {"id": made.id, "name": planned.name, "estimate_usd": round(usd, 4), "estimate_h": hours}
                    | {"spent_usd": 0.0, "started": time.time(), "ended": False}
                )
                prog.update(key, state="pod starting", note=f"pod {made.id}, estimate ${usd:.2f}", cost=_cost(e))
                state.write_state(paths, st)
                continue
            pod = polled.get(key)
            running = pod is not None and not pod.ended
            capped = total >= budget
            if running and not capped:
                seen = hub.get_progress(s, repo, key)  # what the pod last reported
                state_now = f"pod {(pod.status or '').lower()}"
                prog.update(key, state=state_now, cost=_cost(e), step=seen.get("step"), loss=seen.get("loss"))
                continue
            if running:
                cloud.delete(live["id"])
                live["stopped_at_cap"] = True
                prog.say(f"{key}: pod {live['id']} terminated: the study spent ${total:.2f} of MAX_COST ${budget:.2f}")
            live["ended"] = True
            hub.collect(s, repo, key, paths.root)
            if all(state.progress(jobs[key], state.run_dir(paths, r)).values()):
                e.update(status="done", error=None)
                prog.update(key, state="done", note=f"collected from {repo}", cost=_cost(e))
                pending.pop(key)
            elif live.get("stopped_at_cap"):
                note = f"stopped at MAX_COST: the study spent ${total:.2f} of ${budget:.2f}"
                stopped[key] = note
                e.update(status="budget stop", error=note)
                prog.update(key, state="budget stop", note=note, cost=_cost(e))
                pending.pop(key)
            else:
                e.update(status="failed", error=f"pod {live['id']} ended without finished results (see {key}/pod.log)")
                prog.update(key, state="failed", note=e["error"], cost=_cost(e))
            state.write_state(paths, st)
        state.write_state(paths, st)
        if pending:
            time.sleep(poll_s)
    return failed, stopped


def _cost(e: dict[str, Any]) -> str:
    pods = e.get("pods", [])
    return f"${sum(p['spent_usd'] for p in pods):.2f}" if pods else ""
