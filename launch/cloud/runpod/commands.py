"""RunPod's `make cloud-up|cloud-status|cloud-logs|cloud-down` (CLOUD=runpod, the default; `make runpod-*` are the
same) and `make runpod-template`, run through launch/cloud/commands.py: RunPod machines that train a recipe and
end themselves, sized by the plan (launch/preflight/plan.py), behind the cloud interface (launch/cloud/base.py):
a pod for NODES=1 (runpod SDK), an Instant Cluster for NODES>1 (REST API v2, launch/cloud/runpod/clusters.py).

up        RECIPE, GPU, GPUS (per node), NODES, STRATEGY, ARGS as for make plan; VOLUME_GB=<GB> instead of the plan's
          volume (the plan needs the model's facts: refused, with the command that fetches them, when they are
          not here); IMAGE=<pre-built image> (default:
          axolotl's image + this repo's pushed commit, bootstrapped at pod start; SOURCE_ARCHIVE=<path on the
          volume> instead of the git remote), NETWORK_VOLUME=<id>, CLOUD_TYPE=SECURE|COMMUNITY, DATA_CENTER (clusters),
          PUSH_REPO, DRY_RUN=1 prints the request and sends nothing
status    POD=<pod or cluster id> (default: the last one `up` created)
logs      POD=<id>; FOLLOW=1 keeps tailing (a pod's, or a cluster primary's, SSH port; needs PUBLIC_KEY at `up`)
down      POD=<id>; a pod whose outputs live on its own volume is only stopped, a cluster (which cannot stop) is
          not deleted with such a volume, unless FORCE=1
template  a pod template from runpod.toml for RunPod's console
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

from core import atomic
from core.errors import UserError
from core.settings import Settings
from launch.cloud.base import Cloud, Machine
from launch.cloud.runpod import api, request
from launch.cloud.runpod.clusters import RunPodClusters
from launch.cloud.runpod.pods import RunPodPods
from launch.cloud.runpod.spec import PodRequest, check_env_value, load_project

LOG = "outputs/pods/{pod_id}.log"  # under the volume mount; written by launch/cloud/runpod/entrypoint.py


def pods_dir(s: Settings) -> Path:
    return s.outputs / "pods"


def clouds(s: Settings) -> dict[str, Cloud]:
    acct = api.Account.of(s)
    return {"pod": RunPodPods(acct), "cluster": RunPodClusters(acct)}


def shown_env(env: dict[str, str]) -> str:
    return ", ".join(
        f"{k}=<bootstrap script, {len(v)} chars>" if k == "AFFINAGE_BOOT" else f"{k}={v}" for k, v in env.items()
    )


def up(s: Settings, dry_run: bool) -> int:
    recipe = s.recipe or ""
    if not recipe:
        raise UserError("RECIPE is not set", hint="make runpod-up RECIPE=<name> GPU=<type> (make recipes lists them)")
    if not dry_run:
        api.api_key(
            api.Account.of(s)
        )  # a missing key is refused before the plan (which builds the model's module tree)
    b = request.build(recipe, s)
    req, plan, cloud = with_volume(b.request, s), b.plan, b.cloud
    t = plan.topology
    shape = f"{t.nodes} pods x " if cloud.kind == "cluster" else ""
    print(f"{cloud.kind}: {req.name}: {shape}{t.procs_per_node} x {plan.gpu['runpod_id']}, image {b.image}")
    if b.bootstrapped:
        env = req.env
        where = env.get("AFFINAGE_ARCHIVE") or env.get("AFFINAGE_REPO")
        print(f"code: commit {env['AFFINAGE_COMMIT']} from {where}, set up in the image at pod start")
    size = f"{s.volume_gb} GB (VOLUME_GB; the plan says {plan.volume_gb})" if s.volume_gb else f"{plan.volume_gb} GB"
    volume = f"network volume {s.network_volume}" if s.network_volume else f"volume {size}" + " per pod" * (t.nodes > 1)
    print(f"disks: {volume} (plan: {plan.disk.total:.1f} GB of model, checkpoints, merged, GGUF)")
    print("env: " + shown_env(req.env))
    print(
        f"estimated: ~{plan.hours:.2f} h x {t.world_size} x ${plan.gpu['usd_per_hour']:.2f}/h = ${plan.usd:.2f} "
        f"(prices as of the GPU table's date; ON_FINISH={req.env['ON_FINISH']} when training ends)"
    )
    if dry_run:
        print(f"dry run: this is the request that would be sent ({cloud.kind}):")
        print(cloud.request_text(req))
        return 0
    made = cloud.create(req)
    record = {
        "id": made.id,
        "kind": cloud.kind,
        "name": req.name,
        "recipe": recipe,
        "request": req.model_dump(),
        "estimated_usd": round(plan.usd, 2),
        "estimated_hours": round(plan.hours, 2),
    }
    atomic.write_json(pods_dir(s) / f"{made.id}.json", record)
    atomic.write_text(pods_dir(s) / "LATEST", made.id + "\n")
    print(f"created {cloud.kind} {made.id}; make runpod-status / runpod-logs / runpod-down (POD={made.id})")
    return 0


def with_volume(req: Any, s: Settings) -> Any:
    """The request with VOLUME_GB as its volume when given (a pod's volume_in_gb, a cluster's persistent mount)."""
    if not s.volume_gb or s.network_volume:
        return req
    if isinstance(req, PodRequest):
        return PodRequest.model_validate({**req.model_dump(), "volume_in_gb": s.volume_gb})
    mounts = {**req.mounts, "persistent": {**req.mounts["persistent"], "size": s.volume_gb}}
    return req.model_copy(update={"mounts": mounts})


def machine_id(s: Settings) -> str:
    if s.pod:
        return s.pod
    latest = pods_dir(s) / "LATEST"
    if not latest.is_file():
        raise UserError("no pod given and none created from here", hint="POD=<id>, or make runpod-up first")
    return latest.read_text().strip()


def the_machine(s: Settings) -> tuple[str, Cloud, Machine | None]:
    """(id, its cloud, what the cloud reports or None when it no longer exists); the kind comes from the record
    `up` wrote, else a pod is asked for first, then a cluster."""
    mid = machine_id(s)
    record = pods_dir(s) / f"{mid}.json"
    kind = json.loads(record.read_text()).get("kind", "pod") if record.is_file() else None
    if kind:
        cloud = clouds(s)[kind]
        return mid, cloud, cloud.get(mid)
    for cloud in clouds(s).values():
        found = cloud.get(mid)
        if found is not None:
            return mid, cloud, found
    return mid, RunPodPods(api.Account.of(s)), None


def status(s: Settings) -> int:
    mid, cloud, m = the_machine(s)
    if not m:
        print(f"{cloud.kind} {mid}: not found (terminated)")
        return 0
    up_s, rate = m.uptime_s or 0, m.cost_per_hr or 0
    uptime = f", up {up_s / 3600:.2f} h at ${rate}/h (~${up_s / 3600 * rate:.2f} this session)" if m.uptime_s else ""
    cost = f", ${rate:.2f}/h for all its pods" if cloud.kind == "cluster" and m.cost_per_hr is not None else ""
    print(f"{cloud.kind} {mid} ({m.name}): {m.status}, {m.gpus}{uptime}{cost}, volume {m.volume_gb} GB")
    return 0


def ssh_command(m: Machine, follow: bool, mount: str) -> list[str]:
    if m.ssh is None:
        raise UserError(
            f"{m.kind} {m.id} has no public SSH port (yet)",
            hint="it may still be starting; logs need PUBLIC_KEY set at make runpod-up "
            "(your ssh public key) and 22/tcp in runpod.toml's ports",
        )
    tail = ["tail", "-n", "200"] + (["-F"] if follow else [])
    host, port = m.ssh
    log = f"{mount.rstrip('/')}/" + LOG.format(pod_id=m.log_id or m.id)
    return ["ssh", "-o", "StrictHostKeyChecking=accept-new", "-p", str(port), f"root@{host}", *tail, log]


def logs(s: Settings) -> int:
    mid, cloud, m = the_machine(s)
    if not m:
        raise UserError(
            f"{cloud.kind} {mid} not found (terminated)", hint="its log is on the volume: outputs/pods/<id>.log there"
        )
    argv = ssh_command(m, s.follow, load_project().project.volume_mount_path)
    print("$ " + " ".join(argv), flush=True)
    return subprocess.call(argv)


def down(s: Settings) -> int:
    mid, cloud, m = the_machine(s)
    if not m:
        print(f"{cloud.kind} {mid}: already gone")
        return 0
    own_volume = (m.volume_gb or 0) > 0
    if own_volume and not s.force:
        if not cloud.can_stop:
            raise UserError(
                f"cluster {mid} keeps its outputs on its pods' own {m.volume_gb} GB volumes, and a cluster cannot "
                "stop: deleting it deletes them",
                hint=f"copy what you need off the primary (make runpod-logs shows its SSH port), then make "
                f"runpod-down POD={mid} FORCE=1",
            )
        cloud.stop(mid)
        print(
            f"pod {mid} stopped: GPU billing ended; its {m.volume_gb} GB volume (outputs, checkpoints) is "
            "kept and billed as storage. Copy what you need, then make runpod-down FORCE=1 to delete it."
        )
        return 0
    cloud.delete(mid)
    print(f"{cloud.kind} {mid} {'terminated' if cloud.can_stop else 'deleted (every pod of it terminated)'}")
    return 0


def template(s: Settings) -> int:
    if not s.dry_run:
        api.api_key(api.Account.of(s))
    project = load_project().project
    image, docker_args, boot = request.image_and_boot(project, s)
    pod_vars = {**project.env_vars, **boot}
    for k, v in pod_vars.items():
        check_env_value(k, v)
    kwargs: dict[str, Any] = {
        "name": s.template_name or f"{project.name}-train",
        "image_name": image,
        "docker_start_cmd": docker_args or None,
        "container_disk_in_gb": project.container_disk_size_gb,
        "volume_in_gb": s.volume_gb or 100,
        "volume_mount_path": project.volume_mount_path,
        "ports": ",".join(project.port_list),
        "env": pod_vars,
    }
    print("template: " + json.dumps({**kwargs, "env": shown_env(pod_vars)}))
    if s.dry_run:
        return 0
    made = api.create_template(api.Account.of(s), kwargs)
    print(f"created template {made['id']} ({made['name']}); set RECIPE in the pod's env when you deploy it")
    return 0
