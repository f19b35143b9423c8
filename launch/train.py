"""`make train RECIPE=x`: preflight the recipe, then start a new run (launch/start.py), resume an unfinished one
(launch/resume.py) or, on a node of rank > 0, train that node's ranks (launch/worker.py); axolotl runs and the
result is verified and recorded (launch/execute.py), and LATEST points at the run once it is complete."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from core import cli, manifest, rundir
from core.errors import UserError, Where
from core.settings import Settings
from launch import grpo
from launch.distributed import strategy as dist
from launch.distributed import topology as topology_mod
from launch.execute import execute
from launch.preflight import kernels
from launch.preflight.checks import errors_of, run_checks
from launch.resume import find_unfinished, resumable, resume
from launch.start import start
from launch.worker import train_worker
from resolver.resolve import resolve

CPU_MAX_PARAMS_B = 1.0  # above this a CPU run takes days; refuse unless FORCE=1


def train(
    recipe: str,
    args: str | dict | None = None,
    force: bool = False,
    argv: list[str] | None = None,
    run_dir: str | None = None,
    auto_resume: bool = True,
    *,
    s: Settings,
) -> Path:
    if run_dir:  # resume this run: its recipe and recorded overrides unless given again
        # a run another trainer is training now is refused at once, before the preflight (FORCE=1 takes it over)
        if not force:
            rundir.refuse_if_training(rundir.resolve(s.outputs, run_dir))
        recorded = manifest.read(rundir.resolve(s.outputs, run_dir)).train
        recipe = recorded.recipe.name if not rundir.is_recipe_file(recipe) else recipe
        args = args if args is not None else (recorded.overrides or None)
    require_cuda(s, recipe, args)

    def before_heavy() -> None:  # what else is refused cheaply: after the preflight's cheap checks, before its heavy
        refuse_launch_settings(recipe, args, s)
        if run_dir:
            resumable(rundir.resolve(s.outputs, run_dir))

    findings = run_checks(recipe, s, args, need_start=True, before_heavy=before_heavy)[1]
    errors = errors_of(findings)
    for f in findings:  # what the preflight could not check, and where the run logs to, before training starts
        if f.level == "warning" or f.check == "tracking":
            print(f"preflight: {f}")
    if errors:
        raise UserError(
            "preflight failed:\n  " + "\n  ".join(str(f) for f in errors), hint=f"make check RECIPE={recipe}"
        )
    r = resolve(recipe, s, args=args, materialize=True)
    if r.start is not None and r.start.needs_merge:  # its adapter into its base, verified, once per start run
        merge_start(r.start.run, s)
        r = resolve(recipe, s, args=args, materialize=True)
    if r.device == "cpu" and (r.meta.params_b or 0) > CPU_MAX_PARAMS_B and not force:
        raise UserError(
            f"{r.recipe.name} is a {r.meta.params_b:g}B model and this machine has no GPU",
            Where(r.recipe.path, key="meta.params_b"),
            "train on a GPU box or RunPod; FORCE=1 trains on CPU anyway (days)",
        )
    # on a CUDA machine: what the config asks for imports and fits the GPUs, before any run directory exists
    checked_args = kernels.require(r, args)
    if checked_args is not args:
        args = checked_args
        r = resolve(recipe, s, args=args, materialize=True)
    topo = topology_mod.detect(r.device, s)
    print(f"topology: {topo.describe()}")
    # refuse an impossible strategy before any run directory exists (the real choice comes with the config)
    dist.choose_strategy(
        dist.requested_strategy(r.meta.distributed, s),
        topo,
        r.meta.method,
        None,
        r.where("meta.distributed"),
    )
    if not topo.is_primary:  # only node 0 owns the run directory, so only node 0 holds its lock
        return train_worker(r, args, topo, s)
    checks = grpo.before_training(r.config, s)  # GRPO: judge rewards measure their judge; refused before any run dir
    found = find_unfinished(r) if not run_dir and auto_resume else None
    if run_dir or found:
        run = Path(run_dir).resolve() if run_dir else found
        with rundir.hold_for_training(run, force, auto=found is not None):  # a live trainer of it: refused
            if found:
                print(f"resuming the unfinished run {found} (RESUME=0 starts afresh)")
            final, launch = resume(r, args, run, topo, s)
            grpo.record(run, final.config, checks)
            return execute(final, run, launch, topo)
    final, run, launch = start(r, args, topo, s, argv)
    with rundir.hold_for_training(run):
        grpo.record(run, final.config, checks)
        return execute(final, run, launch, topo)


def require_cuda(s: Settings, recipe: str, args: str | dict | None) -> None:
    """DEVICE=gpu where torch sees no CUDA device: one error before anything is prepared, saying how to train on
    this CPU instead. Asked once the recipe and ARGS resolve (cheap, no torch); a GPU run's preflight would import
    torch for its kernel check anyway."""
    if s.device != "gpu":  # without DEVICE=gpu the device is what torch finds
        return
    try:
        params = resolve(recipe, s, device="gpu", args=args).meta.params_b or 0
    except UserError:
        return  # the preflight reports it, with everything else
    if kernels.probe(s).cuda:
        return
    import torch

    if torch.version.cuda is None:
        why = f"torch {torch.__version__} is a CPU build"
    else:
        why = f"torch {torch.__version__} (CUDA {torch.version.cuda}) finds no GPU: no driver, or CUDA_VISIBLE_DEVICES"
    cpu = f"DEVICE=cpu make train RECIPE={recipe} trains on this machine's CPU"
    if params > CPU_MAX_PARAMS_B:
        cpu = f"DEVICE=cpu FORCE=1 make train RECIPE={recipe} trains this {params:g}B model on CPU anyway (days)"
    raise UserError(
        f"DEVICE=gpu, but torch sees no CUDA device on this machine ({why}); nothing was started",
        Where(key="DEVICE"),
        f"{cpu} (a CPU recipe such as smollm2-135m-cpu is sized for it), or train on a GPU: "
        f"make runpod-up RECIPE={recipe}",
    )


def refuse_launch_settings(recipe: str, args: str | dict | None, s: Settings) -> None:
    """The topology and distributed strategy the settings ask for (NODES, STRATEGY, CPU_PROCS...), refused before
    the preflight's heavy checks import axolotl."""
    r = resolve(recipe, s, args=args)
    topo = topology_mod.detect(r.device, s)
    dist.choose_strategy(
        dist.requested_strategy(r.meta.distributed, s), topo, r.meta.method, None, r.where("meta.distributed")
    )


def merge_start(run: Path, s: Settings) -> None:
    """Merge the run this one starts from (tools/export/merge.py, recorded in that run's manifest). Only the first
    node merges: others would write the same folder at once; they find it merged, or are told to wait for it."""
    if (s.node_rank or 0) > 0:
        raise UserError(
            f"the start run {run} is not merged yet",
            Where(run / manifest.MANIFEST),
            f"start node 0 first (it merges), or run make merge RUN={run} once before launching every node",
        )
    from tools.export.merge import merge

    print(f"merging the start run {run} (its adapter becomes part of this run's base model)")
    merge(run)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("recipe", nargs="?", help="recipe name or file (default: RECIPE, else the embedded default)")
    parser.add_argument("--args", default=None, help="axolotl overrides, e.g. '--max_steps=3' (default: ARGS)")
    parser.add_argument("--force", action="store_true", help="train a big model on CPU anyway (default: FORCE)")
    parser.add_argument("--run", default=None, help="resume this unfinished run (default: RUN)")
    ns = parser.parse_args(argv)

    def body(s: Settings) -> None:
        train(
            ns.recipe or s.recipe_or_default,
            ns.args if ns.args is not None else s.args,
            ns.force or s.force,
            argv=[sys.argv[0], *(argv if argv is not None else sys.argv[1:])],
            run_dir=ns.run or s.run,
            auto_resume=s.resume,
            s=s,
        )

    return cli.main(body)


if __name__ == "__main__":
    sys.exit(main())
