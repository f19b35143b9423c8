"""Run axolotl on a run's config.yaml and check what it wrote before calling the run complete: the final
weights exist, a LoRA adapter learned something (every B matrix still zero means nothing was), several ranks
agree, and a disk that filled up mid-run ends in a clear, resumable error."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from core import child, childenv, manifest, quiet, rundir
from core.errors import UserError, Where
from core.hashing import sha256_file
from core.manifest import FinalCheckpoint, Manifest, RanksRecord, TrainSummary
from core.settings import Settings
from launch.distributed import strategy as dist
from launch.distributed.topology import Topology
from launch.grpo import reward_summary
from resolver.resolve import Resolved

WEIGHTS = ("adapter_model.safetensors", "model.safetensors", "model.safetensors.index.json")
SEED_PLUGIN = "launch.seed_plugin.SeedPlugin"
TELEMETRY_PLUGIN = "launch.telemetry_plugin.TelemetryPlugin"


def run_config(config: dict, launch: dist.Launch) -> dict:
    """The config that runs: the resolved recipe, the strategy's keys, the seed plugin (launch/seed_plugin.py) in
    every run, so the adapter's initial weights come from the recipe's seed, and the telemetry plugin
    (launch/telemetry_plugin.py), so every run measures its tokens/s, peak memory and MFU."""
    out = {**config, **launch.config_keys}
    ours = (SEED_PLUGIN, TELEMETRY_PLUGIN)
    plugins = [p for p in (out.get("plugins") or []) if p not in ours]
    out["plugins"] = [*plugins, SEED_PLUGIN, TELEMETRY_PLUGIN]
    return out


def launch_for(final: Resolved, config_path: Path, topo: Topology, s: Settings) -> dist.Launch:
    """The strategy and command for this topology; on GPUs `auto` asks the estimate whether a full copy fits."""
    meta = final.meta
    fits = None
    if topo.device == "gpu" and topo.world_size > 1:
        try:
            import torch

            from launch.preflight import estimate as est
            from launch.preflight import preference_cost

            vram = torch.cuda.get_device_properties(0).total_memory / est.GIB
            m = est.model_facts(final.config, final.hub_base_model, s.cache)
            fits = preference_cost.memory(m, final.config, "ddp", 1, vram).fits
        except UserError:
            fits = None  # unknown model: auto falls back to ZeRO-3, which fits whenever anything does
    return dist.plan_launch(
        final.config,
        config_path,
        topo,
        meta.method,
        dist.requested_strategy(meta.distributed, s),
        fits,
        final.recipe.where("meta.distributed"),
        cache=s.cache,
    )


def final_weights(output_dir: Path) -> Path:
    for name in WEIGHTS:
        if (output_dir / name).is_file():
            return output_dir / name
    raise UserError(
        "training finished but wrote no final weights", Where(output_dir), "see logs/train.log in the run directory"
    )


def adapter_changed(weights: Path) -> bool:
    """LoRA B matrices start at zero; if all are still zero, nothing was learned."""
    if weights.name != "adapter_model.safetensors":
        return True
    from safetensors import safe_open

    with safe_open(weights, "pt") as fh:
        keys = [k for k in fh.keys() if "lora_B" in k]  # noqa: SIM118 - a safetensors handle, not a dict
        return bool(keys) and any(fh.get_tensor(k).abs().max().item() > 0 for k in keys)


def training_summary(output_dir: Path) -> TrainSummary | None:
    """Loss figures from the trainer state of the highest-step checkpoint (metrics only)."""
    states = sorted(output_dir.glob("checkpoint-*/trainer_state.json"), key=lambda p: int(p.parent.name.split("-")[1]))
    for path in reversed(states):  # a state cut short by a kill is skipped
        try:
            state = json.loads(path.read_text())
            break
        except (OSError, json.JSONDecodeError):
            continue
    else:
        return None
    history = state.get("log_history", [])
    losses = [h["loss"] for h in history if "loss" in h]
    evals = [h["eval_loss"] for h in history if "eval_loss" in h]
    margins = [h["rewards/margins"] for h in history if "rewards/margins" in h]
    eval_margins = [h["eval_rewards/margins"] for h in history if "eval_rewards/margins" in h]
    return TrainSummary(
        global_step=state.get("global_step"),
        first_loss=losses[0] if losses else None,
        final_loss=losses[-1] if losses else None,
        first_eval_loss=evals[0] if evals else None,
        eval_loss=evals[-1] if evals else None,
        log_history=rundir.relpath(path, output_dir.parent),
        first_margin=margins[0] if margins else None,
        final_margin=margins[-1] if margins else None,
        eval_margin=eval_margins[-1] if eval_margins else None,
        **reward_summary(history),  # GRPO: every logged step's rewards (launch/grpo.py)
    )


def drop_base_copy(output_dir: Path, config: dict) -> list[str]:
    """axolotl (0.19 to 0.21) also saves the untouched base model beside an rl: LoRA run's adapter (save_pretrained of the
    unwrapped base): gigabytes nothing reads, and a second 'final weights' candidate. Removed once the adapter
    is there; returns the names removed."""
    if not (config.get("rl") and config.get("adapter") and (output_dir / WEIGHTS[0]).is_file()):
        return []
    removed = []
    for path in sorted(output_dir.glob("model*.safetensors*")):
        path.unlink()
        removed.append(path.name)
    return removed


def ran_out_of_disk(log: Path) -> bool:
    """Whether the training log ends in an ENOSPC (errno 28) failure, or the disk is (nearly) full now."""
    from launch.preflight.disk import free_bytes

    if free_bytes(log)[0] < 64 * 2**20:
        return True
    try:
        with open(log, "rb") as fh:
            fh.seek(max(0, fh.seek(0, os.SEEK_END) - 200_000))
            tail = fh.read().decode("utf-8", "replace")
    except OSError:
        return False
    return "No space left on device" in tail or "[Errno 28]" in tail


def run_logged(launch: dist.Launch, log_path: Path, final: Resolved) -> child.Outcome:
    """Run the launch command with its output in the run's log (core/child.py: progress on the screen, tracebacks
    only in the log); return how it ended."""
    for note in final.notes:
        print(f"note: {note}")
    print(f"strategy: {launch.strategy} ({launch.why})\n$ {launch.shell()}", flush=True)
    from data.entries import dataset_entries
    from data.sources import is_local
    from launch.preflight.tracking import wants_wandb

    # nothing to fetch when the model and every dataset are local: offline keeps axolotl from asking the Hub
    offline = Path(final.config["base_model"]).is_dir() and all(
        is_local(ds) for _, _, ds in dataset_entries(final.config)
    )
    env = childenv.child_env(offline=offline, extra=launch.env, tracking=wants_wandb(final.config))
    if wants_wandb(final.config):
        env.setdefault("WANDB_DIR", str(log_path.parent))  # W&B's own files (offline runs too) stay in the run
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    quiet.log_to(log_path)  # this process's harmless library messages join the child's in the run's log
    return child.run(launch.argv, log_path, env)


def _fail(run: Path, m: Manifest, ended: child.Outcome) -> UserError:
    """Record the failure (when the disk lets us) and say what to do next."""
    rc = ended.returncode
    train = m.train.model_copy(update={"status": "failed", "ended": rundir.utc_now(), "returncode": rc})
    log = run / "logs" / "train.log"
    disk_full = ran_out_of_disk(log)
    try:
        manifest.write_sections(run, train=train)
    except OSError as exc:  # the disk is full: the manifest keeps "running", which resume accepts too
        print(f"note: could not record the failure in the manifest ({exc.strerror})")
    if disk_full:
        from launch.checkpoints import last_complete
        from launch.preflight.disk import free_bytes

        free, probe = free_bytes(run)
        ckpt = last_complete(run / "output")
        kept = f"its last complete checkpoint is {ckpt.name}" if ckpt else "it has no complete checkpoint yet"
        return UserError(
            f"the disk filled up during training (No space left on device); {free / 1e9:.2f} GB free now at {probe}",
            Where(log),
            f"the run directory is kept and {kept}; free space (or lower save_total_limit), then "
            f"make train RUN={run} resumes it (a checkpoint cut short is skipped)",
        )
    return UserError(
        ended.message("axolotl"),
        Where(log),
        f"the full output is in {log}; the run directory keeps the config, log and checkpoints; resume with "
        f"make train RUN={run}",
    )


def execute(final: Resolved, run: Path, launch: dist.Launch, topo: Topology) -> Path:
    """Run axolotl on the run's config.yaml, then verify and record the result."""
    print(f"run directory: {run}")
    ended = run_logged(launch, run / "logs" / "train.log", final)
    m = manifest.read(run)
    rc = ended.returncode
    if rc != 0:
        raise _fail(run, m, ended)
    output = Path(final.config["output_dir"])
    removed = drop_base_copy(output, final.config)
    if removed:
        print(
            f"note: removed the unchanged base model axolotl saves beside a preference adapter ({', '.join(removed)})"
        )
    weights = final_weights(output)
    from launch import telemetry_record

    base = final.config["base_model"] if Path(final.config["base_model"]).exists() else final.hub_base_model
    telemetry = telemetry_record.collect(
        run, output, final.config, base, launch.strategy, topo.world_size, final.settings
    )
    train = m.train.model_copy(
        update={
            "ended": rundir.utc_now(),
            "returncode": rc,
            "summary": training_summary(output),
            "telemetry": telemetry,
        }
    )
    if not adapter_changed(weights):
        manifest.write_sections(run, train=train.model_copy(update={"status": "failed"}))
        raise UserError(
            "training exited 0 but every LoRA B matrix is still zero: nothing was learned",
            Where(weights),
            "check the learning rate, max_steps and that samples were not all dropped",
        )
    ranks = None
    if topo.world_size > 1:
        from launch import rank_check

        local = [topo.node_rank * topo.procs_per_node + i for i in range(topo.procs_per_node)]
        try:
            ranks = RanksRecord.model_validate(rank_check.verify(output, local, weights))
        except UserError:
            manifest.write_sections(run, train=train.model_copy(update={"status": "failed"}))
            raise
    final_ckpt = FinalCheckpoint(
        path=rundir.relpath(output, run), file=weights.name, sha256=sha256_file(weights), bytes=weights.stat().st_size
    )
    train = train.model_copy(update={"status": "completed", "final_checkpoint": final_ckpt})
    manifest.write_sections(run, train=train, **({"ranks": ranks} if ranks else {}))
    rundir.mark_latest(run)
    report_done(final.recipe.name, run, weights, train.summary, telemetry)
    return run


def report_done(name: str, run: Path, weights: Path, t: TrainSummary | None, measured=None) -> None:
    t = t or TrainSummary()
    trend = (
        f"; held-out eval loss {t.first_eval_loss:.3f} -> {t.eval_loss:.3f}"
        if t.eval_loss is not None and t.first_eval_loss is not None
        else ""
    )
    if t.final_margin is not None:
        trend += f"; reward margin {t.first_margin:.3f} -> {t.final_margin:.3f}"
        trend += f" (held-out {t.eval_margin:.3f})" if t.eval_margin is not None else ""

    def f3(x: float | None) -> str:
        return "-" if x is None else f"{x:.3f}"

    print(
        f"\ntrained {name}: step {t.global_step}, train loss {f3(t.first_loss)} -> {f3(t.final_loss)} "
        f"(single batches, noisy){trend}"
    )
    if measured is not None:
        from launch.telemetry_record import line

        print(line(measured))
    print(
        f"adapter: {weights}\nrun:     {run}\nnext:    make merge RECIPE={name}   "
        f"make gguf RECIPE={name}   make eval RECIPE={name}   make judge RECIPE={name}"
    )
