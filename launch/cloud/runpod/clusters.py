"""RunPod Instant Clusters (NODES>1) through REST API v2 (launch/cloud/runpod/rest.py): a TRAINING cluster of
pod count x GPUs per pod x one GPU type, one container configuration for every pod. RunPod sets each pod's
rendezvous env (PRIMARY_ADDR, NODE_RANK, NUM_NODES, NUM_TRAINERS, WORLD_SIZE), which the launcher reads
(launch/distributed/topology.py). A cluster cannot be stopped: delete is the only stop, and it takes the pods' own
(persistent) mounts with it, so outputs meant to survive live on a network volume or are pushed first."""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from launch.cloud.base import Cloud, Machine
from launch.cloud.runpod import api, rest
from launch.cloud.runpod.pods import ENDED

MAX_PODS = 250  # the API's podCount bounds: 2..250


class Compute(BaseModel):
    model_config = ConfigDict(extra="forbid")
    gpuTypeId: str = Field(min_length=1)
    gpuCountPerPod: int = Field(ge=1)
    podCount: int = Field(ge=2, le=MAX_PODS)


class ClusterRequest(BaseModel):
    """The body of POST /v2/clusters, field for field (the API rejects any other key)."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1)
    type: Literal["TRAINING"] = "TRAINING"
    compute: Compute
    image: str
    args: str = ""
    disk: int = Field(ge=1)
    env: dict[str, str]
    ports: list[str]
    mounts: dict[str, Any]
    startSsh: bool = True
    dataCenterIds: list[str] | None = None

    def body(self) -> dict[str, Any]:
        return self.model_dump(exclude_none=True)


def cluster_path(cluster_id: str) -> str:
    return f"/v2/clusters/{cluster_id}"


def as_machine(c: dict[str, Any], pods: list[dict[str, Any]] | None = None) -> Machine:
    compute = c.get("compute") or {}
    counts = (c.get("pods") or {}).get("byStatus") or {}
    primary = c.get("primary") or {}
    ssh = None
    if primary.get("sshEndpoint"):
        host, _, port = primary["sshEndpoint"].rpartition(":")
        ssh = (host, int(port))
    persistent = ((pods or [{}])[0].get("mounts") or {}).get("persistent") if pods else None
    return Machine(
        id=c["id"],
        name=c.get("name"),
        kind="cluster",
        status=", ".join(f"{n} {s}" for s, n in sorted(counts.items())) or None,
        gpus=f"{compute.get('podCount')} pods x {compute.get('gpuCountPerPod')} x {compute.get('gpuTypeId')}",
        cost_per_hr=sum(float(p.get("cost") or 0) for p in pods) if pods else None,
        volume_gb=int(persistent["size"]) if persistent else (0 if pods else None),
        ssh=ssh,
        log_id=primary.get("podId"),
        ended=bool(counts) and all(status in ENDED for status in counts),
        raw=c,
    )


class RunPodClusters(Cloud):
    kind = "cluster"
    can_stop = False

    def __init__(self, acct: api.Account):
        self.acct = acct

    def request_text(self, request: ClusterRequest) -> str:
        return "POST /v2/clusters\n" + json.dumps(request.body(), indent=2)

    def find_named(self, name: str) -> Machine | None:
        """One look (between retries of a create); a failure counts as not found."""
        try:
            found = rest._send(self.acct, "GET", "/v2/clusters", None) or {}
        except Exception:  # noqa: BLE001 - any failure: not known to exist
            return None
        match = next((c for c in found.get("clusters") or [] if c.get("name") == name), None)
        return as_machine(match) if match else None

    def create(self, request: ClusterRequest) -> Machine:
        made = rest.call(
            self.acct,
            f"creating cluster {request.name}",
            "POST",
            "/v2/clusters",
            request.body(),
            between=lambda: self.find_named(request.name),
        )
        return made if isinstance(made, Machine) else as_machine(made)

    def get(self, machine_id: str) -> Machine | None:
        try:
            c = rest.call(self.acct, f"reading cluster {machine_id}", "GET", cluster_path(machine_id))
            pods = rest.call(
                self.acct, f"reading the pods of cluster {machine_id}", "GET", cluster_path(machine_id) + "/pods"
            )
        except rest.NotFound:
            return None
        return as_machine(c, (pods or {}).get("pods") or [])

    def stop(self, machine_id: str) -> None:
        raise NotImplementedError("RunPod clusters cannot be stopped; delete is the only stop")

    def delete(self, machine_id: str) -> None:
        try:
            rest.call(self.acct, f"deleting cluster {machine_id}", "DELETE", cluster_path(machine_id))
        except rest.NotFound:
            return
