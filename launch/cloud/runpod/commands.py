"""`make runpod-up|runpod-status|runpod-logs|runpod-down|runpod-template`: pods that train a recipe and
stop themselves, sized by the plan (launch/plan.py), created with the runpod SDK.

up        RECIPE, GPU, GPUS, STRATEGY, ARGS as for make plan; IMAGE (default: runpod.toml base_image),
          NETWORK_VOLUME=<id> (outputs survive termination), CLOUD=SECURE|COMMUNITY, PUSH_REPO, DRY_RUN=1
status    POD=<id> (default: the last pod `up` created)
logs      POD=<id>; FOLLOW=1 keeps tailing (over the pod's SSH port; needs PUBLIC_KEY at `up`)
down      POD=<id>; terminates, or only stops a pod whose outputs live on its own volume (FORCE=1 terminates)
template  a pod template from runpod.toml for RunPod's console and Instant Clusters
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from core import atomic, cli, settings
from core.errors import UserError, Where
from core.paths import outputs_dir
from core.settings import Settings
from launch.cloud.runpod import api
from launch.cloud.runpod.spec import PodRequest, load_project, pod_env, pod_name

POD_LOG = "/workspace/outputs/pods/{pod_id}.log"  # written by launch/entrypoint.py on the volume


def pods_dir() -> Path:
    return outputs_dir() / "pods"


def build_request(recipe: str, s: Settings) -> tuple[PodRequest, Any]:
    from launch.preflight.plan import CONTAINER_DISK_GB, make_plan

    nodes = s.nodes or 1
    if nodes > 1:
        raise UserError(
            f"NODES={nodes}: runpod SDK 1.10.0 has no Instant Cluster call",
            hint="make runpod-template, then create an Instant Cluster from that template in the RunPod "
            "console with RECIPE set; each node's entrypoint reads the cluster's env (README)",
        )
    if s.gpus == 0:
        raise UserError("GPUS must be at least 1 for a pod, not 0", Where(key="GPUS"))
    plan = make_plan(recipe, s.gpu, s.gpus, 1, s.strategy, s.args)
    if not plan.memory.fits:
        raise UserError(
            f"{recipe} does not fit on {plan.topology.procs_per_node} x {plan.gpu['name']} "
            f"(~{plan.memory.total:.0f} GiB per GPU of {plan.memory.available:.1f})",
            hint="would fit: " + ("; ".join(plan.alternatives) or "a bigger GPU or more GPUs"),
        )
    project = load_project().project
    pod_vars = pod_env(project, plan.resolved.recipe.name, s)
    network_volume = s.network_volume
    # With a network volume the outputs outlive the pod, so it may terminate itself; a pod volume dies with
    # the pod, so the pod only stops (storage is billed until `make runpod-down FORCE=1`).
    pod_vars.setdefault("ON_FINISH", "terminate" if network_volume else "stop")
    req = PodRequest(
        name=pod_name(project, plan.resolved.recipe.name),
        image_name=s.image or project.base_image,
        gpu_type_id=plan.gpu["runpod_id"],
        gpu_count=plan.topology.procs_per_node,
        cloud_type=(s.cloud or "SECURE").upper(),
        container_disk_in_gb=max(project.container_disk_size_gb, CONTAINER_DISK_GB),
        volume_in_gb=plan.volume_gb,
        volume_mount_path=project.volume_mount_path,
        ports=",".join(project.port_list),
        env=pod_vars,
        network_volume_id=network_volume,
    )
    if req.cloud_type not in ("SECURE", "COMMUNITY", "ALL"):
        raise UserError(f"CLOUD must be SECURE, COMMUNITY or ALL, not '{req.cloud_type}'", Where(key="CLOUD"))
    return req, plan


def graphql_text(req: PodRequest) -> str:
    """The mutation the SDK will send, from the SDK's own generator (what --dry-run shows)."""
    from runpod.api.mutations.pods import generate_pod_deployment_mutation

    # the defaults create_pod passes for what we leave unset (runpod 1.10.0)
    kw = {"min_vcpu_count": 1, "min_memory_in_gb": 1, "docker_args": "", **req.sdk_kwargs()}
    return generate_pod_deployment_mutation(**kw).strip()


def up(s: Settings, dry_run: bool) -> int:
    recipe = s.recipe or ""
    if not recipe:
        raise UserError("RECIPE is not set", hint="make runpod-up RECIPE=<name> GPU=<type> (make recipes lists them)")
    req, plan = build_request(recipe, s)
    hours = plan.hours
    print(f"pod: {req.name}: {req.gpu_count} x {req.gpu_type_id} ({req.cloud_type}), image {req.image_name}")
    print(
        f"disks: container {req.container_disk_in_gb} GB, "
        + (f"network volume {req.network_volume_id}" if req.network_volume_id else f"volume {req.volume_in_gb} GB")
        + f" at {req.volume_mount_path} (plan: {plan.disk.total:.1f} GB of model, checkpoints, merged, GGUF)"
    )
    print("env: " + ", ".join(f"{k}={v}" for k, v in req.env.items()))
    print(
        f"estimated: ~{hours:.2f} h x {req.gpu_count} x ${plan.gpu['usd_per_hour']:.2f}/h = ${plan.usd:.2f} "
        f"(prices as of the GPU table's date; the pod runs ON_FINISH={req.env['ON_FINISH']} when training ends)"
    )
    if dry_run:
        print("dry run: this is the request the runpod SDK would send:")
        print(graphql_text(req))
        return 0
    pod = api.create_pod(req.sdk_kwargs())
    record = {
        "id": pod["id"],
        "name": req.name,
        "recipe": recipe,
        "request": req.model_dump(),
        "estimated_usd": round(plan.usd, 2),
        "estimated_hours": round(hours, 2),
    }
    atomic.write_json(pods_dir() / f"{pod['id']}.json", record)
    atomic.write_text(pods_dir() / "LATEST", pod["id"] + "\n")
    print(f"created pod {pod['id']}; make runpod-status / runpod-logs / runpod-down (POD={pod['id']})")
    return 0


def pod_id(s: Settings) -> str:
    if s.pod:
        return s.pod
    latest = pods_dir() / "LATEST"
    if not latest.is_file():
        raise UserError("no pod given and none created from here", hint="POD=<id>, or make runpod-up first")
    return latest.read_text().strip()


def the_pod(s: Settings) -> tuple[str, dict[str, Any] | None]:
    """(id, the API's record of it or None when it no longer exists)."""
    pid = pod_id(s)
    return pid, api.get_pod(pid)


def status(s: Settings) -> int:
    pid, pod = the_pod(s)
    if not pod:
        print(f"pod {pid}: not found (terminated)")
        return 0
    up_s = pod.get("uptimeSeconds") or 0
    rate = pod.get("costPerHr") or 0
    print(
        f"pod {pid} ({pod.get('name')}): {pod.get('desiredStatus')}, {pod.get('gpuCount')} x "
        f"{(pod.get('machine') or {}).get('gpuDisplayName', '?')}, up {up_s / 3600:.2f} h at ${rate}/h "
        f"(~${up_s / 3600 * float(rate):.2f} this session), volume {pod.get('volumeInGb')} GB"
    )
    return 0


def ssh_command(pod: dict[str, Any], follow: bool) -> list[str]:
    ports = (pod.get("runtime") or {}).get("ports") or []
    ssh = next((p for p in ports if p.get("privatePort") == 22 and p.get("isIpPublic")), None)
    if ssh is None:
        raise UserError(
            f"pod {pod['id']} has no public SSH port (yet)",
            hint="it may still be starting; logs need PUBLIC_KEY set at make runpod-up "
            "(your ssh public key) and 22/tcp in runpod.toml's ports",
        )
    tail = ["tail", "-n", "200"] + (["-F"] if follow else [])
    return [
        "ssh",
        "-o",
        "StrictHostKeyChecking=accept-new",
        "-p",
        str(ssh["publicPort"]),
        f"root@{ssh['ip']}",
        *tail,
        POD_LOG.format(pod_id=pod["id"]),
    ]


def logs(s: Settings) -> int:
    pid, pod = the_pod(s)
    if not pod:
        raise UserError(
            f"pod {pid} not found (terminated)", hint="its log is on the volume: outputs/pods/<id>.log there"
        )
    argv = ssh_command(pod, s.follow)
    print("$ " + " ".join(argv), flush=True)
    return subprocess.call(argv)


def down(s: Settings) -> int:
    pid, pod = the_pod(s)
    if not pod:
        print(f"pod {pid}: already gone")
        return 0
    if (pod.get("volumeInGb") or 0) > 0 and not s.force:
        api.stop_pod(pid)
        print(
            f"pod {pid} stopped: GPU billing ended; its {pod['volumeInGb']} GB volume (outputs, checkpoints) is "
            "kept and billed as storage. Copy what you need, then make runpod-down FORCE=1 to delete it."
        )
        return 0
    api.terminate_pod(pid)
    print(f"pod {pid} terminated")
    return 0


def template(s: Settings) -> int:
    project = load_project().project
    from launch.cloud.runpod.spec import check_env_value

    pod_vars = dict(project.env_vars)
    for k, v in pod_vars.items():
        check_env_value(k, v)
    kwargs = {
        "name": s.template_name or f"{project.name}-train",
        "image_name": s.image or project.base_image,
        "container_disk_in_gb": project.container_disk_size_gb,
        "volume_in_gb": s.volume_gb or 100,
        "volume_mount_path": project.volume_mount_path,
        "ports": ",".join(project.port_list),
        "env": pod_vars,
    }
    print("template: " + json.dumps(kwargs))
    if s.dry_run:
        return 0
    made = api.create_template(kwargs)
    print(f"created template {made['id']} ({made['name']}); set RECIPE in the pod's env when you deploy it")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["up", "status", "logs", "down", "template"])
    parser.add_argument("--dry-run", action="store_true", help="print the request, send nothing (default: DRY_RUN)")
    ns = parser.parse_args(argv)

    def body() -> int:
        s = settings.load()
        if ns.command == "up":
            return up(s, ns.dry_run or s.dry_run)
        return {"status": status, "logs": logs, "down": down, "template": template}[ns.command](s)

    return cli.main(body)


if __name__ == "__main__":
    sys.exit(main())
