"""A node of rank > 0: it trains its ranks in a scratch folder under OUTPUTS/workers; the run directory, the
manifest and pushes are node 0's alone."""

from __future__ import annotations

from pathlib import Path

from core import rundir
from core.settings import Settings
from core.yamlio import dump
from launch.distributed.topology import Topology
from launch.execute import launch_for, run_config, run_logged
from resolver.resolve import Resolved, resolve


def train_worker(r: Resolved, args: str | dict | None, topo: Topology, s: Settings) -> Path:
    work = s.outputs / "workers" / r.recipe.name / f"{rundir.utc_now().replace(':', '')}-node{topo.node_rank}"
    work.mkdir(parents=True)
    final = resolve(r.recipe, s, device=r.device, args=args, run_dir=work, materialize=True)
    launch = launch_for(final, work / "config.yaml", topo, s)
    final.config = run_config(final.config, launch)
    (work / "config.yaml").write_text(dump(final.config))
    (work / "logs").mkdir()
    ended = run_logged(launch, work / "logs" / "train.log", final)
    if ended.returncode != 0:
        raise ended.error(f"axolotl on node {topo.node_rank}")
    print(f"node {topo.node_rank} finished its ranks; the run directory, manifest and pushes are node 0's")
    return work
