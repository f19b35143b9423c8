"""RUNPOD=1: one pod per run, in parallel, never launched past MAX_COST by the plan's estimate plus what has been
spent. Each pod is the request `make runpod-up` builds (launch/cloud/runpod: sized by the plan, secrets as
RunPod references, ON_FINISH=terminate) with the run's job in STUDY_SPEC, on which the pod's entrypoint (after
the bootstrap, or a pre-built image's CMD) runs the study's pod job (python -m eval.study.pod: train, evaluate,
judge, upload the results to the study's private Hub repo, stop). The study polls the pods, collects
each run's results from the Hub when its pod is gone, tries a failed run again `retries` times, and records
pods and spending in state.json, so a re-run neither launches a pod twice nor forgets what was spent."""

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

POD_OVERHEAD_H = 0.25  # image start, model download, evaluation and judging: beyond the plan's training time
POLL_S = 30.0  # STUDY_POLL_S
ENDED = ("EXITED", "TERMINATED", "DEAD")


def secrets_for(job: Job) -> list[str]:
    """The RunPod secrets a pod needs: HF_TOKEN (the upload) and each API judge's key."""
    from eval.judge import judge_specs

    names = ["HF_TOKEN"] + [spec["key_env"] for spec in judge_specs(job.judges).values() if spec.get("key_env")]
    return list(dict.fromkeys(names))


def request(study: Study, r: StudyRun, job: Job, s: Settings) -> tuple[dict[str, Any], float, float]:
    """(the SDK's create_pod kwargs, estimated USD, estimated hours) for one run: `make runpod-up`'s request
    (launch/cloud/runpod/request.py: plan, image, secrets, per-run name) running the study's job."""
    from launch.cloud.runpod import request as runpod_request
    from launch.cloud.runpod.spec import load_project, pod_name

    if rundir.recipe_name(r.recipe) != r.recipe:
        raise UserError(
            f"run '{r.key}' uses a recipe file ({r.recipe}); a pod has only the repo's recipes",
            Where(key=f"{r.where}.recipe"),
            "add the recipe to recipes/ (and commit it), or run the study locally",
        )
    extra = {"STUDY_SPEC": job.encode(), "STUDY_RUN": r.key, "STUDY_REPO": job.repo or ""}
    built = runpod_request.build_pod(
        r.recipe,
        s,
        args=r.args,
        gpu=study.budget.gpu or s.gpu,
        gpus=study.budget.gpus or s.gpus,
        on_finish="terminate",  # the results live on the Hub, not on the pod's volume
        secrets=secrets_for(job),
        extra_env=extra,  # STUDY_SPEC: the pod's entrypoint runs the study's job (eval.study.pod)
        name=pod_name(load_project().project, f"{study.name}-{r.key}"),
        push=False,
    )
    req, plan = built.request, built.plan
    rate = plan.gpu["usd_per_hour"] * plan.topology.world_size
    return req.sdk_kwargs(), plan.usd + POD_OVERHEAD_H * rate, plan.hours + POD_OVERHEAD_H


def spent(pod: dict[str, Any] | None, before: float) -> float:
    if not pod:
        return before
    return max(before, (pod.get("uptimeSeconds") or 0) / 3600 * float(pod.get("costPerHr") or 0))


def committed(entries: dict[str, dict[str, Any]]) -> float:
    """What the study has spent or may still spend: a live pod counts its estimate until it has spent more."""
    total = 0.0
    for e in entries.values():
        for p in e.get("pods", []):
            total += p["spent_usd"] if p.get("ended") else max(p["estimate_usd"], p["spent_usd"])
    return total


def run_all(
    study: Study, paths: state.StudyPaths, runs: list[StudyRun], jobs: dict[str, Job], s: Settings, prog: Progress
) -> tuple[dict[str, str], list[str]]:
    """({key: why it failed}, [budget stops])."""
    from launch.cloud.runpod import api

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
    failed: dict[str, str] = {}
    stopped: list[str] = []
    todo = []
    for r in runs:
        e = entries.setdefault(r.key, {"pods": []})
        e.setdefault("pods", [])
        live = [p for p in e["pods"] if not p.get("ended")]
        if state.run_dir(paths, r) is None and not live and hub.collect(s, repo, r.key, paths.root):
            prog.say(f"{r.key}: results found on {repo}")
        if all(state.progress(jobs[r.key], state.run_dir(paths, r)).values()):
            prog.update(r.key, state="done", note="finished before: skipped", cost=_cost(e))
            continue
        e["tries"] = 0  # this invocation's attempts
        todo.append(r)
    pending = {r.key: r for r in todo}
    while pending:
        for key, r in list(pending.items()):
            e = entries[key]
            live = next((p for p in e["pods"] if not p.get("ended")), None)
            if live is None:
                if e["tries"] > study.retries:
                    failed[key] = e.get("error") or "failed"
                    pending.pop(key)
                    continue
                kwargs, usd, hours = request(study, r, jobs[key], s)
                if committed(entries) + usd > budget:
                    stopped.append(key)
                    note = f"not launched: ${committed(entries):.2f} committed + ${usd:.2f} > MAX_COST ${budget:.2f}"
                    prog.update(key, state="budget stop", note=note, cost=_cost(e))
                    e.update(status="budget stop", error=note)
                    pending.pop(key)
                    continue
                pod = api.create_pod(kwargs)
                e["tries"] += 1
                e.update(status="running", error=None)
                e["pods"].append(
                    {"id": pod["id"], "name": kwargs["name"], "estimate_usd": round(usd, 4), "estimate_h": hours}
                    | {"spent_usd": 0.0, "started": time.time(), "ended": False}
                )
                prog.update(key, state="pod starting", note=f"pod {pod['id']}, estimate ${usd:.2f}", cost=_cost(e))
                state.write_state(paths, st)
                continue
            pod = api.get_pod(live["id"])
            live["spent_usd"] = round(spent(pod, live["spent_usd"]), 4)
            overdue = time.time() - live["started"] > 3600 * (3 * live["estimate_h"] + 0.5)
            if pod and pod.get("desiredStatus") not in ENDED and not overdue:
                seen = hub.get_progress(s, repo, key)  # what the pod last reported
                state_now = f"pod {pod.get('desiredStatus', '').lower()}"
                prog.update(key, state=state_now, cost=_cost(e), step=seen.get("step"), loss=seen.get("loss"))
                continue
            if pod and overdue:
                api.terminate_pod(live["id"])
                prog.say(f"{key}: pod {live['id']} ran past 3x its estimate; terminated")
            live["ended"] = True
            hub.collect(s, repo, key, paths.root)
            if all(state.progress(jobs[key], state.run_dir(paths, r)).values()):
                e.update(status="done", error=None)
                prog.update(key, state="done", note=f"collected from {repo}", cost=_cost(e))
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
