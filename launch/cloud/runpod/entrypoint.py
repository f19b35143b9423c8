"""The pod's entrypoint (the Dockerfile's CMD, or the end of launch/cloud/bootstrap.sh on axolotl's image): train
RECIPE, then on node 0 optionally merge, convert to GGUF and push to PUSH_REPO, then stop or terminate the pod
(ON_FINISH) so it stops billing. On a cluster (CLUSTER_NAME, set by make runpod-up NODES>1) node 0 deletes the
whole cluster (a cluster cannot stop); the other nodes leave that to it. A study's pod (STUDY_SPEC set, by
eval/study/pods.py) runs the study's job instead (python -m eval.study.pod), so the bootstrap and a pre-built
image's CMD both reach it unchanged.

Env: RECIPE (required), ARGS, NODES and the Instant Cluster's own variables (read by the launcher),
PUSH_REPO (+ PRIVATE=0 for public, QUANTS), ON_FINISH=stop|terminate|none (default stop), OUTPUTS (default
<volume mount>/outputs: the volume, so checkpoints survive the pod and a new pod resumes the run). Credentials
(HF_TOKEN for the push; RUNPOD_API_KEY, which RunPod gives every pod to stop itself) come from the
environment and are never printed. Everything printed also goes to OUTPUTS/pods/<pod id>.log."""

from __future__ import annotations

import os
import socket
import sys
from pathlib import Path

from core import childenv, settings
from core.errors import UserError, Where
from core.paths import REPO
from core.settings import Settings
from launch.cloud.base import ON_FINISH, finish_mode
from launch.cloud.runpod.api import Account
from launch.cloud.tee import Tee


def pod_settings(s: Settings) -> dict[str, str]:
    """Check the pod's env before any GPU time is spent."""
    recipe = s.recipe
    if not recipe:
        raise UserError(
            "RECIPE is not set in the pod's environment",
            Where(key="RECIPE"),
            "set RECIPE=<name> on the pod or template",
        )
    on_finish = finish_mode(s.on_finish)
    push = s.push_repo or ""
    if push:
        token = s.hf_token.get_secret_value() if s.hf_token else ""
        if not token:
            raise UserError(
                "PUSH_REPO is set but the pod has no HF_TOKEN",
                hint="add a RunPod secret named HF_TOKEN; make runpod-up passes a reference to it",
            )
        if token.startswith("{{"):
            raise UserError(
                "HF_TOKEN reached the pod as an unresolved secret reference",
                hint="create the RunPod secret HF_TOKEN (Settings > Secrets)",
            )
    return {"recipe": recipe, "on_finish": on_finish, "push": push}


def steps(s: dict[str, str], primary: bool) -> list[list[str]]:
    py = sys.executable
    out = [[py, "-m", "launch.train", s["recipe"]]]
    if primary and s["push"]:
        out += [
            [py, "-m", "tools.export.merge"],
            [py, "-m", "tools.export.gguf"],
            [py, "-m", "tools.export.push", "--repo", s["push"]],
        ]
    return out


def finish_cluster(tee: Tee, on_finish: str, name: str, primary: bool, acct: Account) -> None:
    if on_finish == "none":
        tee.say(f"ON_FINISH=none: cluster {name} keeps running (and billing) until make runpod-down")
        return
    if not primary:
        tee.say(f"this node is done; node 0 deletes cluster {name}")
        return
    from launch.cloud.runpod.clusters import RunPodClusters

    clusters = RunPodClusters(acct)
    try:
        found = clusters.find_named(name)
        if found is None:
            tee.say(f"error: cluster {name} not found; delete it yourself: make runpod-down POD=<its id>")
            return
        clusters.delete(found.id)
        tee.say(f"cluster {found.id} ({name}): delete requested")
    except UserError as exc:
        tee.say(f"error: could not delete cluster {name}: {exc}\n  delete it yourself: make runpod-down")


def finish(
    tee: Tee, on_finish: str, pod_id: str | None, acct: Account, cluster: str | None = None, primary: bool = True
) -> None:
    if cluster:
        finish_cluster(tee, on_finish, cluster, primary, acct)
        return
    if on_finish == "none":
        tee.say("ON_FINISH=none: the pod keeps running (and billing) until you stop it")
        return
    if not pod_id:
        tee.say(f"ON_FINISH={on_finish} but RUNPOD_POD_ID is not set (not on RunPod?); nothing to stop")
        return
    from launch.cloud.runpod import api

    try:
        (api.stop_pod if on_finish == "stop" else api.terminate_pod)(acct, pod_id)
        tee.say(f"pod {pod_id}: {on_finish} requested")
    except UserError as exc:
        tee.say(f"error: could not {on_finish} pod {pod_id}: {exc}\n  stop it yourself: make runpod-down POD={pod_id}")


def main() -> int:
    s: Settings | None = None
    unreadable: UserError | None = None  # reported below, where a failed pod still stops itself
    try:
        s = settings.load()  # once, for the whole pod (its steps are processes of their own)
    except UserError as exc:
        unreadable = exc
    if s is not None and s.study_spec:
        # exec, not import: eval.study reaches this module through the provider (end_machine), so importing it back
        # would be a cycle
        os.execv(sys.executable, [sys.executable, "-m", "eval.study.pod"])
    from launch.cloud.runpod.spec import load_project

    mount = load_project().project.volume_mount_path
    os.environ.setdefault("OUTPUTS", f"{mount}/outputs")  # the volume: a new pod on it resumes the run
    env = childenv.child_env(
        extra={"PYTHONPATH": os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p)}
    )
    pod_id = (env.get("RUNPOD_POD_ID") or "").strip() or None
    tee = Tee(Path(env["OUTPUTS"]) / "pods" / f"{pod_id or socket.gethostname()}.log")
    on_finish = (env.get("ON_FINISH") or "stop").strip() or "stop"
    if on_finish not in ON_FINISH:
        on_finish = "stop"  # a typo must not leave a failed pod billing; pod_settings() reports it
    rc = 2
    cluster = (env.get("CLUSTER_NAME") or "").strip() or None
    primary = True
    try:
        if unreadable is not None:
            raise unreadable
        primary = (s.node_rank or 0) == 0
        p = pod_settings(s)
        on_finish = p["on_finish"]
        for argv in steps(p, primary):
            rc = tee.run(argv, env)
            if rc != 0:
                tee.say(
                    f"error: step '{' '.join(argv[1:])}' exited with status {rc}; the run directory on the volume "
                    "keeps what was done (make train resumes an unfinished run)"
                )
                break
    except UserError as exc:
        tee.say(f"error: {exc}")
    finish(tee, on_finish, pod_id, account(s), cluster, primary)
    return rc


def account(s: Settings | None) -> Account:
    """RunPod's credentials to end this pod with: from the settings, else (a variable of another concern is
    malformed) from the cloud ones alone, so that a failed pod still stops itself."""
    if s is not None:
        return Account.of(s)
    try:
        return Account.of(settings.load(section=settings.CloudSettings))
    except UserError:
        return Account(None)


if __name__ == "__main__":
    sys.exit(main())
