"""The request `make runpod-up` sends, from the plan (launch/preflight/plan.py) and runpod.toml: one pod for NODES=1,
an Instant Cluster (REST API v2) for NODES>1, sized by the plan for the whole cluster. Both get the same image,
env (the recipe, forwarded settings, secret references, ON_FINISH), disks and per-run name. The image is axolotl's
official cloud image at the repo's pins, with this repo bootstrapped at pod start from the checkout's pushed
commit (launch/cloud/source.py); IMAGE=<pre-built image> (make image) is the fast path without the bootstrap."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.errors import UserError, Where
from core.paths import REPO
from core.settings import Settings
from launch.cloud.base import Cloud
from launch.cloud.runpod import api
from launch.cloud.runpod.clusters import MAX_PODS, ClusterRequest, Compute, RunPodClusters
from launch.cloud.runpod.pods import RunPodPods
from launch.cloud.runpod.spec import (
    SECRET_REF,
    PodRequest,
    Project,
    check_env_value,
    load_project,
    pod_env,
    pod_name,
)
from launch.cloud.source import DOCKER_ARGS, boot_env, pushed_source

MAX_GPUS_PER_POD = 8


@dataclass
class Built:
    request: Any  # PodRequest | ClusterRequest
    plan: Any  # launch.preflight.plan.Plan
    cloud: Cloud
    image: str
    bootstrapped: bool


def image_and_boot(project: Project, s: Settings) -> tuple[str, str, dict[str, str]]:
    """(image, container command, extra env): a pre-built IMAGE= as is; else axolotl's image and the bootstrap."""
    if s.image:
        return s.image, "", {}
    source = pushed_source(Path(s.source_checkout or REPO), s.source_archive)
    return project.base_image, DOCKER_ARGS, boot_env(source)


def _plan(
    recipe: str, s: Settings, nodes: int, args: str | None = None, gpu: str | None = None, gpus: int | None = None
):
    from launch.preflight.plan import make_plan

    plan = make_plan(recipe, s, gpu or s.gpu, gpus or s.gpus, nodes, s.strategy, s.args if args is None else args)
    if not plan.memory.fits:
        raise UserError(
            f"{recipe} does not fit on {plan.topology.procs_per_node} x {plan.gpu['name']} "
            f"(~{plan.memory.total:.0f} GiB per GPU of {plan.memory.available:.1f})",
            hint="would fit: " + ("; ".join(plan.alternatives) or "a bigger GPU or more GPUs"),
        )
    return plan


def build(recipe: str, s: Settings) -> Built:
    if s.gpus == 0:
        raise UserError("GPUS must be at least 1 for a pod, not 0", Where(key="GPUS"))
    nodes = s.nodes or 1
    return build_cluster(recipe, s, nodes) if nodes > 1 else build_pod(recipe, s)


def build_pod(
    recipe: str,
    s: Settings,
    *,
    args: str | None = None,
    gpu: str | None = None,
    gpus: int | None = None,
    on_finish: str | None = None,
    secrets: Sequence[str] = (),
    extra_env: Mapping[str, str] | None = None,
    name: str | None = None,
    push: bool = True,
) -> Built:
    """One pod. The keywords replace what `s` says, for a caller whose pod is not `make runpod-up`'s (a study's
    pod, eval/study/pods.py): its run's ARGS, GPU type and count, ON_FINISH, more RunPod secrets (names only;
    the pod gets references), more env, its name, and push=False for no PUSH_REPO (nor PRIVATE, QUANTS)."""
    from launch.preflight.plan import CONTAINER_DISK_GB
    from resolver.registry import load_recipe

    # the settings and the checkout are refused first: the plan builds the model's module tree
    recipe_name = load_recipe(recipe).name
    project = load_project().project
    env = pod_env(project, recipe_name, s)
    env.pop("NODES", None)  # one pod is one node, whatever NODES said
    if args is not None:
        env.pop("ARGS", None)
        if args:
            env["ARGS"] = args
    if not push:
        for key in ("PUSH_REPO", "PRIVATE", "QUANTS"):
            env.pop(key, None)
    env.update({key: SECRET_REF.format(name=key) for key in secrets})
    env.update(extra_env or {})
    if on_finish is not None:
        env["ON_FINISH"] = on_finish
    # With a network volume the outputs outlive the pod, so it may terminate itself; a pod volume dies with
    # the pod, so the pod only stops (storage is billed until `make runpod-down FORCE=1`).
    env.setdefault("ON_FINISH", "terminate" if s.network_volume else "stop")
    for key, value in env.items():
        check_env_value(key, value, Where(key=key))
    cloud_type = (s.cloud_type or "SECURE").upper()
    if cloud_type not in ("SECURE", "COMMUNITY", "ALL"):
        raise UserError(f"CLOUD_TYPE must be SECURE, COMMUNITY or ALL, not '{cloud_type}'", Where(key="CLOUD_TYPE"))
    image, docker_args, boot = image_and_boot(project, s)
    plan = _plan(recipe, s, 1, args, gpu, gpus)
    req = PodRequest(
        name=name or pod_name(project, recipe_name),
        image_name=image,
        gpu_type_id=plan.gpu["runpod_id"],
        gpu_count=plan.topology.procs_per_node,
        cloud_type=cloud_type,
        container_disk_in_gb=max(project.container_disk_size_gb, CONTAINER_DISK_GB),
        volume_in_gb=plan.volume_gb,
        volume_mount_path=project.volume_mount_path,
        ports=",".join(project.port_list),
        env={**env, **boot},
        network_volume_id=s.network_volume,
        docker_args=docker_args,
    )
    return Built(req, plan, RunPodPods(api.Account.of(s)), image, bool(boot))


def build_cluster(recipe: str, s: Settings, nodes: int) -> Built:
    from launch.preflight.plan import CONTAINER_DISK_GB

    if nodes > MAX_PODS:
        raise UserError(f"NODES={nodes}: a RunPod cluster has 2 to {MAX_PODS} pods", Where(key="NODES"))
    if (s.gpus or 0) > MAX_GPUS_PER_POD:
        raise UserError(
            f"GPUS={s.gpus} per node: a RunPod pod has at most {MAX_GPUS_PER_POD} GPUs",
            Where(key="GPUS"),
            f"GPUS is per node; NODES={nodes} x GPUS={MAX_GPUS_PER_POD} is the largest shape of this many nodes",
        )
    from resolver.registry import load_recipe

    recipe_name = load_recipe(recipe).name  # the settings and the checkout are refused before the plan
    project = load_project().project
    env = pod_env(project, recipe_name, s)
    on_finish = env.setdefault("ON_FINISH", "terminate")
    if on_finish == "stop":
        raise UserError(
            "ON_FINISH=stop: a RunPod cluster cannot be stopped, only deleted",
            Where(key="ON_FINISH"),
            "ON_FINISH=terminate deletes the cluster when training ends (the default), none keeps it running",
        )
    if on_finish != "none" and not s.network_volume and not s.push_repo:
        raise UserError(
            f"NODES={nodes} without NETWORK_VOLUME: deleting the cluster when training ends would delete its "
            "outputs with the pods' own volumes",
            Where(key="NETWORK_VOLUME"),
            "NETWORK_VOLUME=<id> (outputs outlive the cluster), PUSH_REPO=<repo> (pushed before the delete), "
            "or ON_FINISH=none (the cluster runs and bills until make runpod-down)",
        )
    name = pod_name(project, recipe_name)
    env["CLUSTER_NAME"] = name  # whom the primary's ON_FINISH deletes
    image, docker_args, boot = image_and_boot(project, s)
    env.update(boot)
    for key, value in env.items():
        check_env_value(key, value, Where(key=key))
    plan = _plan(recipe, s, nodes)
    mount = project.volume_mount_path
    mounts = (
        {"network": [{"volumeId": s.network_volume, "path": mount}]}
        if s.network_volume
        else {"persistent": {"size": max(plan.volume_gb, 10), "path": mount}}
    )
    req = ClusterRequest(
        name=name,
        compute=Compute(gpuTypeId=plan.gpu["runpod_id"], gpuCountPerPod=plan.topology.procs_per_node, podCount=nodes),
        image=image,
        args=docker_args,
        disk=max(project.container_disk_size_gb, CONTAINER_DISK_GB),
        env=env,
        ports=project.port_list,
        mounts=mounts,
        dataCenterIds=[s.data_center] if s.data_center else None,
    )
    return Built(req, plan, RunPodClusters(api.Account.of(s)), image, bool(boot))
