"""Resuming a killed run from its last complete checkpoint: the same run directory and config continue with
axolotl's resume_from_checkpoint, with the same number of processes (ZeRO optimizer shards are per rank)."""

from __future__ import annotations

from pathlib import Path

import yaml

from core import atomic, manifest, rundir
from core.errors import UserError, Where
from core.manifest import Manifest, ResumeRecord
from core.settings import Settings
from core.yamlio import dump
from launch.checkpoints import last_complete
from launch.distributed import strategy as dist
from launch.distributed.topology import Topology
from launch.execute import launch_for
from resolver.resolve import Resolved, resolve


def find_unfinished(r: Resolved) -> Path | None:
    """The newest run of this recipe (same recipe files and overrides) that did not complete and has a complete
    checkpoint to go on from."""
    base = rundir.recipe_runs_dir(r.settings.outputs, r.recipe.name)
    for run in sorted((p for p in base.glob("*") if (p / manifest.MANIFEST).is_file()), reverse=True):
        m = manifest.read(run)
        if m.train.status == "completed":
            return None
        started_from = m.train.start_from.run if m.train.start_from else None
        same_start = started_from == (str(r.start.run) if r.start else None)
        if m.train.recipe.sha256 == r.recipe.sha256 and m.train.overrides == r.overrides and same_start:
            return run if last_complete(run / "output") is not None else None
    return None


def resumable(run: Path) -> Path:
    """The run's last complete checkpoint, or a UserError saying why the run cannot be resumed (checked before
    the preflight's heavy checks, and again when the config is pointed at it)."""
    m = manifest.read(run)
    if m.train.status == "completed":
        raise UserError("this run already completed; nothing to resume", Where(run / manifest.MANIFEST))
    ckpt = last_complete(run / "output")
    if ckpt is None:
        raise UserError(
            "the run has no complete checkpoint to resume from",
            Where(run / "output"),
            f"start afresh: make train RECIPE={m.train.recipe.name}",
        )
    return ckpt


def resume_config(run: Path) -> tuple[Path, Manifest]:
    """Point the run's config at its last complete checkpoint and record the resume; return (checkpoint, manifest)."""
    ckpt = resumable(run)
    m = manifest.read(run)
    config = yaml.safe_load((run / "config.yaml").read_text())
    config["resume_from_checkpoint"] = str(ckpt)
    atomic.write_text(run / "config.yaml", dump(config))
    resumes = [
        *m.resumes,
        ResumeRecord(at=rundir.utc_now(), from_=rundir.relpath(ckpt, run), step=int(ckpt.name.split("-")[1])),
    ]
    m = manifest.write_sections(run, train=m.train.model_copy(update={"status": "running"}), resumes=resumes)
    return ckpt, m


def resume(
    r: Resolved, args: str | dict | None, run: Path, topo: Topology, s: Settings
) -> tuple[Resolved, dist.Launch]:
    """Prepare `run` to continue; return (final config, launch)."""
    recorded = manifest.read(run).train.topology.world_size
    if recorded != topo.world_size:
        raise UserError(
            f"this run trained with {recorded} process(es); resuming needs the same number, not {topo.world_size}",
            Where(run / manifest.MANIFEST, key="train.topology.world_size"),
            "set GPUS/CPU_PROCS/NODES as before (optimizer shards are per rank)",
        )
    ckpt, _ = resume_config(run)
    print(f"resuming {run} from {ckpt.name}")
    final = resolve(r.recipe, s, device=r.device, args=args, run_dir=run)
    final.config = yaml.safe_load((run / "config.yaml").read_text())
    return final, launch_for(final, run / "config.yaml", topo, s)
