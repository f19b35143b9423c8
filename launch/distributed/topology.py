"""Where a run executes: how many nodes, processes per node, this node's rank and the rendezvous address.

Read from the machine (GPU count through torch) and the environment: GPUS, NODES, NODE_RANK,
MASTER_ADDR, MASTER_PORT, and on a RunPod Instant Cluster its own names (PRIMARY_ADDR, PRIMARY_PORT,
NUM_NODES, NUM_TRAINERS, WORLD_SIZE; docs.runpod.io/instant-clusters/configuration). On a CPU machine
CPU_PROCS=N runs N processes, which is how the multi-process path is tested without GPUs.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from core.errors import UserError, Where
from core.settings import Settings

DEFAULT_PORT = 29500
# RunPod: "Do not use eth0 for inter-node communication"; PRIMARY_ADDR is on ens1.
RUNPOD_NCCL_IFNAME = "ens1"


class Topology(BaseModel):
    device: Literal["cpu", "gpu"]
    nodes: int = Field(1, ge=1)
    procs_per_node: int = Field(1, ge=1)
    node_rank: int = Field(0, ge=0)
    master_addr: str | None = None
    master_port: int = DEFAULT_PORT
    source: str = "this machine"
    runpod_cluster: bool = False
    nccl_socket_ifname: str | None = None

    @property
    def world_size(self) -> int:
        return self.nodes * self.procs_per_node

    @property
    def is_primary(self) -> bool:
        """Only node rank 0 writes the run directory, the manifest and pushes."""
        return self.node_rank == 0

    def describe(self) -> str:
        n = self.procs_per_node
        per = f"{n} GPU{'s' * (n > 1)}" if self.device == "gpu" else f"{n} CPU process{'es' * (n > 1)}"
        where = f"{self.nodes} node{'s' if self.nodes > 1 else ''} x {per}"
        if self.nodes > 1:
            where += f", this node rank {self.node_rank}, rendezvous {self.master_addr}:{self.master_port}"
        return f"{where} (from {self.source})"


def detect(device: str, s: Settings, gpus_found: int | None = None) -> Topology:
    """The topology for this process from the settings (GPUS, NODES, ... validated in core/settings.py) and the
    machine. `gpus_found` is what torch sees (None: ask torch)."""
    runpod = s.runpod_cluster
    sources: list[str] = []

    if device == "gpu":
        if gpus_found is None:
            from resolver.profiles import gpu_count

            gpus_found = gpu_count(s)
        per_node = s.gpus
        if per_node is not None:
            sources.append("GPUS")
            if per_node < 1:
                raise UserError(
                    "GPUS must be at least 1 on a GPU machine, not 0",
                    Where(key="GPUS"),
                    "leave GPUS unset to use every GPU torch sees",
                )
            if gpus_found and per_node > gpus_found:
                raise UserError(
                    f"GPUS={per_node} but this machine has {gpus_found} GPU(s)",
                    Where(key="GPUS"),
                    "leave GPUS unset to use every GPU torch sees",
                )
        elif runpod and s.num_trainers is not None:
            per_node = s.num_trainers
            sources.append("NUM_TRAINERS")
        else:
            per_node = max(gpus_found, 1)
            sources.append(f"torch sees {gpus_found} GPU(s)")
    else:
        if (s.gpus or 0) > 0:
            raise UserError(
                f"GPUS={s.gpus} but this machine trains on CPU (no CUDA device, or DEVICE=cpu)",
                Where(key="GPUS"),
                "CPU_PROCS=N runs N CPU processes (for testing the multi-process path)",
            )
        per_node = s.cpu_procs or 1
        sources.append("CPU_PROCS" if s.cpu_procs else "CPU, one process")

    cluster_nodes, nodes = s.num_nodes, s.nodes
    if nodes is not None and cluster_nodes is not None and nodes != cluster_nodes:
        raise UserError(
            f"NODES={nodes} but this cluster has NUM_NODES={cluster_nodes}",
            Where(key="NODES"),
            "leave NODES unset on a RunPod Instant Cluster; the cluster's env says how many",
        )
    nodes = nodes or cluster_nodes or 1
    if cluster_nodes is not None:
        sources.append("NUM_NODES")

    node_rank = s.node_rank or 0
    if node_rank >= nodes:
        raise UserError(
            f"NODE_RANK={node_rank} but there are only {nodes} node(s) (ranks 0..{nodes - 1})", Where(key="NODE_RANK")
        )

    master_addr = s.master_addr or s.primary_addr
    master_port = s.master_port or s.primary_port or DEFAULT_PORT
    if nodes > 1 and not master_addr:
        raise UserError(
            f"NODES={nodes} needs MASTER_ADDR (the rank-0 node's address) and MASTER_PORT",
            Where(key="MASTER_ADDR"),
            "a RunPod Instant Cluster sets PRIMARY_ADDR/PRIMARY_PORT itself",
        )

    world = s.world_size
    if runpod and world is not None and world != nodes * per_node:
        raise UserError(
            f"WORLD_SIZE={world} but {nodes} node(s) x {per_node} GPU(s) = {nodes * per_node}",
            Where(key="WORLD_SIZE"),
            "GPUS must match the cluster's NUM_TRAINERS; leave it unset on a cluster",
        )
    return Topology(
        device=device,
        nodes=nodes,
        procs_per_node=per_node,
        node_rank=node_rank,
        master_addr=master_addr,
        master_port=master_port,
        source=", ".join(sources + (["RunPod Instant Cluster env"] if runpod else [])),
        runpod_cluster=runpod,
        nccl_socket_ifname=s.nccl_socket_ifname,
    )
