"""Which checkpoints of a run are complete. The HF Trainer writes trainer_state.json last (after weights,
optimizer, scheduler and RNG state), so a checkpoint killed mid-save lacks it, or the files before it.
A DeepSpeed checkpoint keeps its optimizer as one shard per rank under global_step<N>/, named by `latest`."""

from __future__ import annotations

import json
from pathlib import Path

WEIGHTS = ("adapter_model.safetensors", "model.safetensors", "model.safetensors.index.json")
NEEDED = ("optimizer.pt", "scheduler.pt")


def is_complete(ckpt: Path) -> bool:
    try:
        state = json.loads((ckpt / "trainer_state.json").read_text())
        step = int(ckpt.name.split("-")[1])
    except (OSError, ValueError, IndexError):
        return False
    if state.get("global_step") != step or not any((ckpt / w).is_file() for w in WEIGHTS):
        return False
    if (ckpt / "latest").is_file():
        return deepspeed_complete(ckpt)
    return all((ckpt / f).is_file() and (ckpt / f).stat().st_size > 0 for f in NEEDED)


def deepspeed_complete(ckpt: Path) -> bool:
    """`latest` names a global_step folder holding the model state and the optimizer shards."""
    tag = (ckpt / "latest").read_text().strip()
    folder = ckpt / tag
    models = list(folder.glob("*_model_states.pt"))
    optims = list(folder.glob("*_optim_states.pt"))
    # ZeRO-3 writes a model-state file per rank, ZeRO-1/2 one in all; the optimizer is always one per rank
    return bool(optims) and bool(models) and all(f.stat().st_size > 0 for f in models + optims)


def last_complete(output_dir: Path) -> Path | None:
    """The highest-step complete checkpoint-N under output_dir (a half-written one is skipped)."""
    found = [p for p in Path(output_dir).glob("checkpoint-*") if p.name.split("-")[-1].isdigit() and is_complete(p)]
    return max(found, key=lambda p: int(p.name.split("-")[1]), default=None)
