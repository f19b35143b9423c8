"""`make train RECIPE=x`: resolve the recipe, preflight it, train with axolotl into a new run directory,
verify the result, record the manifest and point LATEST at the run."""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from launch import distributed as dist
from launch import atomic, environment, runs
from launch import topology as topology_mod
from launch.check import dataset_entries, dataset_file, run_checks
from launch.errors import UserError, Where, user_errors_exit
from launch.paths import REPO
from launch.recipes import dump_config
from launch.resolve import Resolved, resolve
from launch.topology import Topology

CPU_MAX_PARAMS_B = 1.0  # above this a CPU run takes days; refuse unless FORCE=1
DEFAULT_RECIPE = "smollm2-135m-cpu"


def launch_for(final: Resolved, config_path: Path, topo: Topology) -> dist.Launch:
    """The strategy and command for this topology; on GPUs `auto` asks the estimate whether a full copy fits."""
    meta = final.recipe.meta
    fits = None
    if topo.device == "gpu" and topo.world_size > 1:
        try:
            import torch

            from launch import estimate as est

            vram = torch.cuda.get_device_properties(0).total_memory / est.GIB
            m = est.model_facts(final.config, final.hub_base_model)
            fits = est.memory(m, final.config, "ddp", 1, vram).fits
        except UserError:
            fits = None  # unknown model: auto falls back to ZeRO-3, which fits whenever anything does
    return dist.plan_launch(final.config, config_path, topo, meta.method, dist.requested_strategy(meta.distributed),
                            fits, final.recipe.where("meta.distributed"))


def final_weights(output_dir: Path) -> Path:
    for name in ("adapter_model.safetensors", "model.safetensors", "model.safetensors.index.json"):
        if (output_dir / name).is_file():
            return output_dir / name
    raise UserError("training finished but wrote no final weights", Where(output_dir),
                    "see logs/train.log in the run directory")


def adapter_changed(weights: Path) -> bool:
    """LoRA B matrices start at zero; if all are still zero, nothing was learned."""
    if weights.name != "adapter_model.safetensors":
        return True
    from safetensors import safe_open

    with safe_open(weights, "pt") as fh:
        keys = [k for k in fh.keys() if "lora_B" in k]
        return bool(keys) and any(fh.get_tensor(k).abs().max().item() > 0 for k in keys)


def training_summary(output_dir: Path) -> dict[str, Any]:
    """Loss figures from the trainer state of the highest-step checkpoint (metrics only)."""
    states = sorted(output_dir.glob("checkpoint-*/trainer_state.json"), key=lambda p: int(p.parent.name.split("-")[1]))
    if not states:
        return {}
    for path in reversed(states):  # a state cut short by a kill is skipped
        try:
            state = json.loads(path.read_text())
            break
        except (OSError, json.JSONDecodeError):
            continue
    else:
        return {}
    losses = [h["loss"] for h in state.get("log_history", []) if "loss" in h]
    evals = [h["eval_loss"] for h in state.get("log_history", []) if "eval_loss" in h]
    return {"global_step": state.get("global_step"), "first_loss": losses[0] if losses else None,
            "final_loss": losses[-1] if losses else None, "first_eval_loss": evals[0] if evals else None,
            "eval_loss": evals[-1] if evals else None,
            "log_history": runs.relpath(path, output_dir.parent)}


def start_manifest(r: Resolved, run: Path, argv: list[str]) -> dict[str, Any]:
    datasets = []
    for section, _, ds in dataset_entries(r.config):
        path = dataset_file(ds)
        datasets.append({"path": ds["path"], "role": "train" if section == "datasets" else "held-out",
                         "sha256": runs.sha256_file(path), "bytes": path.stat().st_size})
    return {
        "recipe": {"name": r.recipe.name, "file": str(r.recipe.path.relative_to(REPO)) if r.recipe.path.is_relative_to(REPO)
                   else str(r.recipe.path), "sha256": r.recipe.sha256,
                   "files": [str(f.relative_to(REPO)) if f.is_relative_to(REPO) else str(f) for f in r.recipe.files]},
        "meta": r.recipe.meta.model_dump(),
        "base_model": {"name": r.hub_base_model, "path": r.config["base_model"]},
        "device": r.device, "overrides": r.overrides, "notes": r.notes,
        "datasets": datasets, "git": environment.git_state(), "packages": environment.package_versions(),
        "hardware": environment.hardware(), "command": argv, "config": "config.yaml",
        "status": "running", "started": runs.utc_now(),
    }


def find_unfinished(r: Resolved) -> Path | None:
    """The newest run of this recipe (same recipe files and overrides) that did not complete."""
    base = runs.recipe_runs_dir(r.recipe.name)
    for run in sorted((p for p in base.glob("*") if (p / runs.MANIFEST).is_file()), reverse=True):
        m = runs.read_manifest(run)
        if m.get("status") == "completed":
            return None
        if m["recipe"]["sha256"] == r.recipe.sha256 and m.get("overrides") == r.overrides:
            return run
    return None


def resume_config(run: Path) -> tuple[Path, dict[str, Any]]:
    """Point the run's config at its last complete checkpoint; return (checkpoint, manifest)."""
    import yaml

    from launch.checkpoints import last_complete

    manifest = runs.read_manifest(run)
    if manifest.get("status") == "completed":
        raise UserError("this run already completed; nothing to resume", Where(run / runs.MANIFEST))
    ckpt = last_complete(run / "output")
    if ckpt is None:
        raise UserError("the run has no complete checkpoint to resume from", Where(run / "output"),
                        f"start afresh: make train RECIPE={manifest['recipe']['name']}")
    config = yaml.safe_load((run / "config.yaml").read_text())
    config["resume_from_checkpoint"] = str(ckpt)
    atomic.write_text(run / "config.yaml", dump_config(config))
    manifest.setdefault("resumes", []).append({"at": runs.utc_now(), "from": runs.relpath(ckpt, run),
                                               "step": int(ckpt.name.split("-")[1])})
    manifest["status"] = "running"
    return ckpt, manifest


def train(recipe: str, args: str | None = None, force: bool = False, argv: list[str] | None = None,
          run_dir: str | None = None, auto_resume: bool = True) -> Path:
    if run_dir:
        run = runs.resolve_run(run_dir)
        recorded = runs.read_manifest(run)
        recipe = recorded["recipe"]["name"] if not Path(recipe).suffix else recipe
        args = args if args is not None else (recorded.get("overrides") or None)
    _, findings = run_checks(recipe, args)
    errors = [f for f in findings if f.level == "error"]
    if errors:
        raise UserError("preflight failed:\n  " + "\n  ".join(str(f) for f in errors), hint=f"make check RECIPE={recipe}")
    r = resolve(recipe, args=args, materialize=True)
    if r.device == "cpu" and r.recipe.meta.params_b > CPU_MAX_PARAMS_B and not force:
        raise UserError(f"{r.recipe.name} is a {r.recipe.meta.params_b:g}B model and this machine has no GPU",
                        Where(r.recipe.path, key="meta.params_b"),
                        "train on a GPU box or RunPod; FORCE=1 trains on CPU anyway (days)")
    topo = topology_mod.detect(r.device)
    print(f"topology: {topo.describe()}")
    # refuse an impossible strategy before any run directory exists (the real choice comes with the config)
    dist.choose_strategy(dist.requested_strategy(r.recipe.meta.distributed), topo, r.recipe.meta.method, None,
                         r.recipe.where("meta.distributed"))
    if not topo.is_primary:
        return train_worker(r, args, topo)
    if not run_dir and auto_resume:
        unfinished = find_unfinished(r)
        if unfinished is not None:
            from launch.checkpoints import last_complete

            if last_complete(unfinished / "output") is not None:
                print(f"resuming the unfinished run {unfinished} (RESUME=0 starts afresh)")
                run_dir = str(unfinished)
    if run_dir:
        run = Path(run_dir)
        ckpt, manifest = resume_config(run)
        recorded_world = manifest.get("topology", {}).get("world_size", 1)
        if recorded_world != topo.world_size:
            raise UserError(f"this run trained with {recorded_world} process(es); resuming needs the same number, "
                            f"not {topo.world_size}", Where(run / runs.MANIFEST, key="topology.world_size"),
                            "set GPUS/CPU_PROCS/NODES as before (optimizer shards are per rank)")
        print(f"resuming {run} from {ckpt.name}")
        final = resolve(r.recipe, device=r.device, args=args, run_dir=run)
        import yaml

        final.config = yaml.safe_load((run / "config.yaml").read_text())
        launch = launch_for(final, run / "config.yaml", topo)
        runs.write_manifest(run, manifest)
    else:
        run = runs.new_run_dir(r.recipe.name)
        final = resolve(r.recipe, device=r.device, args=args, run_dir=run, materialize=True)
        launch = launch_for(final, run / "config.yaml", topo)
        final.config.update(launch.config_keys)
        atomic.write_text(run / "config.yaml", dump_config(final.config))
        (run / "logs").mkdir()
        manifest = start_manifest(final, run, argv or sys.argv)
        manifest["topology"] = {**topo.model_dump(), "world_size": topo.world_size}
        manifest["launch"] = {"strategy": launch.strategy, "why": launch.why, "argv": launch.argv, "env": launch.env}
        runs.write_manifest(run, manifest)
    return execute(final, run, manifest, launch, topo)


def train_worker(r: Resolved, args: str | None, topo: Topology) -> Path:
    """A node of rank > 0: trains its ranks in a scratch folder; the run directory is node 0's alone."""
    from launch.paths import outputs_dir

    work = outputs_dir() / "workers" / r.recipe.name / f"{runs.utc_now().replace(':', '')}-node{topo.node_rank}"
    work.mkdir(parents=True)
    final = resolve(r.recipe, device=r.device, args=args, run_dir=work, materialize=True)
    launch = launch_for(final, work / "config.yaml", topo)
    final.config.update(launch.config_keys)
    (work / "config.yaml").write_text(dump_config(final.config))
    (work / "logs").mkdir()
    rc = run_logged(launch, work / "logs" / "train.log", final)
    if rc != 0:
        raise UserError(f"axolotl exited with status {rc} on node {topo.node_rank}", Where(work / "logs" / "train.log"))
    print(f"node {topo.node_rank} finished its ranks; the run directory, manifest and pushes are node 0's")
    return work


def ran_out_of_disk(log: Path) -> bool:
    """Whether the training log ends in an ENOSPC (errno 28) failure, or the disk is (nearly) full now."""
    from launch.check import free_bytes

    if free_bytes(log)[0] < 64 * 2**20:
        return True
    try:
        with open(log, "rb") as fh:
            fh.seek(max(0, fh.seek(0, os.SEEK_END) - 200_000))
            tail = fh.read().decode("utf-8", "replace")
    except OSError:
        return False
    return "No space left on device" in tail or "[Errno 28]" in tail


def run_logged(launch: dist.Launch, log_path: Path, final: Resolved) -> int:
    """Run the launch command, teeing its output into the run's log; return its exit status."""
    for note in final.notes:
        print(f"note: {note}")
    print(f"strategy: {launch.strategy} ({launch.why})\n$ {launch.shell()}", flush=True)
    env = environment.hygiene_env(offline=Path(final.config["base_model"]).is_dir())
    env.update(launch.env)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    with open(log_path, "a") as log:
        proc = subprocess.Popen(launch.argv, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                text=True, bufsize=1)
        assert proc.stdout is not None
        logging = True
        for line in proc.stdout:
            sys.stdout.write(line)
            if logging:
                try:
                    log.write(line)
                except OSError as exc:  # disk full: keep training output on the terminal, stop the file
                    logging = False
                    print(f"note: stopped writing {log_path} ({exc.strerror})", flush=True)
        try:
            log.flush()
        except OSError:
            pass
        return proc.wait()


def execute(final: Resolved, run: Path, manifest: dict[str, Any], launch: dist.Launch, topo: Topology) -> Path:
    """Run axolotl on the run's config.yaml, then verify and record the result."""
    print(f"run directory: {run}")
    rc = run_logged(launch, run / "logs" / "train.log", final)
    manifest.update(ended=runs.utc_now(), returncode=rc)
    if rc != 0:
        manifest["status"] = "failed"
        disk_full = ran_out_of_disk(run / "logs" / "train.log")
        try:
            runs.write_manifest(run, manifest)
        except OSError as exc:  # the disk is full: the manifest keeps "running", which resume accepts too
            print(f"note: could not record the failure in the manifest ({exc.strerror})")
        if disk_full:
            from launch.check import free_bytes
            from launch.checkpoints import last_complete

            free, probe = free_bytes(run)
            ckpt = last_complete(run / "output")
            kept = f"its last complete checkpoint is {ckpt.name}" if ckpt else "it has no complete checkpoint yet"
            raise UserError(f"the disk filled up during training (No space left on device); {free / 1e9:.2f} GB free "
                            f"now at {probe}", Where(run / "logs" / "train.log"),
                            f"the run directory is kept and {kept}; free space (or lower save_total_limit), then "
                            f"make train RUN={run} resumes it (a checkpoint cut short is skipped)")
        raise UserError(f"axolotl exited with status {rc}", Where(run / "logs" / "train.log"),
                        f"the run directory keeps the config, log and checkpoints; resume with make train RUN={run}")
    output = Path(final.config["output_dir"])
    weights = final_weights(output)
    manifest["train"] = training_summary(output)
    if not adapter_changed(weights):
        manifest["status"] = "failed"
        runs.write_manifest(run, manifest)
        raise UserError("training exited 0 but every LoRA B matrix is still zero: nothing was learned",
                        Where(weights), "check the learning rate, max_steps and that samples were not all dropped")
    if topo.world_size > 1:
        from launch import rank_check

        local = [topo.node_rank * topo.procs_per_node + i for i in range(topo.procs_per_node)]
        try:
            manifest["ranks"] = rank_check.verify(output, local, weights)
        except UserError:
            manifest["status"] = "failed"
            runs.write_manifest(run, manifest)
            raise
    manifest["final_checkpoint"] = {"path": runs.relpath(output, run), "file": weights.name,
                                    "sha256": runs.sha256_file(weights), "bytes": weights.stat().st_size}
    manifest["status"] = "completed"
    runs.write_manifest(run, manifest)
    runs.mark_latest(run)
    t = manifest["train"]
    name = final.recipe.name
    trend = (f"; held-out eval loss {t['first_eval_loss']:.3f} -> {t['eval_loss']:.3f}"
             if t.get("eval_loss") is not None and t.get("first_eval_loss") is not None else "")
    f3 = (lambda x: "-" if x is None else f"{x:.3f}")
    print(f"\ntrained {name}: step {t.get('global_step')}, train loss {f3(t.get('first_loss'))} -> {f3(t.get('final_loss'))} "
          f"(single batches, noisy){trend}")
    print(f"adapter: {weights}\nrun:     {run}\nnext:    make merge RECIPE={name}   "
          f"make gguf RECIPE={name}   make eval RECIPE={name}   make judge RECIPE={name}")
    return run


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("recipe", nargs="?", default=os.environ.get("RECIPE") or DEFAULT_RECIPE)
    parser.add_argument("--args", default=os.environ.get("ARGS"), help="axolotl overrides, e.g. '--max_steps=3'")
    parser.add_argument("--force", action="store_true", default=os.environ.get("FORCE") == "1")
    parser.add_argument("--run", default=os.environ.get("RUN"), help="resume this unfinished run")
    ns = parser.parse_args(argv)
    with user_errors_exit():
        train(ns.recipe, ns.args, ns.force, argv=[sys.argv[0], *(argv if argv is not None else sys.argv[1:])],
              run_dir=ns.run, auto_resume=os.environ.get("RESUME") != "0")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
