"""A new run: its directory, the config that will run (recipe, device profile, ARGS, run paths, the strategy's
keys) written as config.yaml, and the manifest's train section with everything needed to reproduce it."""

from __future__ import annotations

import sys
from pathlib import Path

from core import atomic, manifest, provenance, rundir
from core.hashing import sha256_file
from core.manifest import (
    BaseModelRef,
    DatasetRef,
    LaunchRecord,
    MetaRecord,
    PreferenceRecord,
    RecipeRef,
    StartFrom,
    TopologyRecord,
    TrainSection,
)
from core.paths import repo_relative
from core.settings import Settings
from core.yamlio import dump
from data.entries import dataset_entries, dataset_file
from launch.distributed import strategy as dist
from launch.distributed.topology import Topology
from launch.execute import launch_for, run_config
from resolver.resolve import Resolved, resolve


def start_from(r: Resolved) -> StartFrom | None:
    if r.start is None:
        return None
    return StartFrom(
        run=str(r.start.run),
        recipe=r.start.recipe,
        checkpoint_sha256=r.start.checkpoint_sha256,
        merged=str(r.start.weights) if r.start.weights else None,
        prefs=str(r.start.prefs) if r.start.prefs else None,
    )


def preference(config: dict) -> PreferenceRecord | None:
    """The method and the reference model of an rl: run, as the plan states them (launch/preflight/preference.py)."""
    from launch.preflight import grpo, preference

    rl = config.get("rl")
    if not rl:
        return None
    method = grpo if rl == "grpo" else preference  # GRPO's beta defaults to 0: no reference model
    return PreferenceRecord(rl=str(rl), beta=method.beta_of(config), reference=method.reference_of(config))


def train_section(r: Resolved, topo: Topology, launch: dist.Launch, argv: list[str]) -> TrainSection:
    datasets = []
    for section, _, ds in dataset_entries(r.config):
        path = dataset_file(ds)
        datasets.append(
            DatasetRef(
                path=ds["path"],
                role="train" if section == "datasets" else "held-out",
                sha256=sha256_file(path),
                bytes=path.stat().st_size,
            )
        )
    return TrainSection(
        recipe=RecipeRef(
            name=r.recipe.name,
            file=repo_relative(r.recipe.path),
            sha256=r.recipe.sha256,
            files=[repo_relative(f) for f in r.recipe.files],
        ),
        meta=MetaRecord.model_validate(r.meta.model_dump()),
        base_model=BaseModelRef(name=r.hub_base_model, path=r.config["base_model"]),
        device=r.device,
        overrides=r.overrides,
        notes=r.notes,
        datasets=datasets,
        git=provenance.git_state(),
        packages=provenance.package_versions(),
        hardware=provenance.hardware(),
        command=argv,
        status="running",
        started=rundir.utc_now(),
        topology=TopologyRecord.model_validate({**topo.model_dump(), "world_size": topo.world_size}),
        launch=LaunchRecord(strategy=launch.strategy, why=launch.why, argv=launch.argv, env=launch.env),
        start_from=start_from(r),
        preference=preference(r.config),
    )


def start(
    r: Resolved, args: str | dict | None, topo: Topology, s: Settings, argv: list[str] | None = None
) -> tuple[Resolved, Path, dist.Launch]:
    """Create the run directory, its config.yaml and manifest; return (final config, run, launch)."""
    run = rundir.new_run_dir(s.outputs, r.recipe.name)
    final = resolve(r.recipe, s, device=r.device, args=args, run_dir=run, materialize=True)
    launch = launch_for(final, run / "config.yaml", topo, s)
    final.config = run_config(final.config, launch)
    atomic.write_text(run / "config.yaml", dump(final.config))
    (run / "logs").mkdir()
    manifest.create(run, train_section(final, topo, launch, argv or sys.argv))
    return final, run, launch
