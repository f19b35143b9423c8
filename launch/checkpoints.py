"""Which checkpoints of a run are complete. The HF Trainer writes trainer_state.json last (after weights,
optimizer, scheduler and RNG state), so a checkpoint killed mid-save lacks it, or the files before it."""
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
    return (state.get("global_step") == step and any((ckpt / w).is_file() for w in WEIGHTS)
            and all((ckpt / f).is_file() and (ckpt / f).stat().st_size > 0 for f in NEEDED))


def last_complete(output_dir: Path) -> Path | None:
    """The highest-step complete checkpoint-N under output_dir (a half-written one is skipped)."""
    found = [p for p in Path(output_dir).glob("checkpoint-*") if p.name.split("-")[-1].isdigit() and is_complete(p)]
    return max(found, key=lambda p: int(p.name.split("-")[1]), default=None)
