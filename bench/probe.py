"""What the GPU bench measures inside a training process, the same way for ours (axolotl, through the plugin in
bench/probe_plugin.py) and the baseline (bench/baseline_trainer.py): real tokens counted from the batches each
training step really receives (attention_mask != 0: packed rows mark their samples 1, 2, ..., padding 0), the
time of each optimizer step, and GPU memory at three points: after the model (and adapter) are loaded, after the
first optimizer step (weights, trainable weights and optimizer state stay; gradients are freed), and the peak.
Written as JSON (PROBE_FILE in the run's output folder) when training ends."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

PROBE_FILE = "bench_probe.json"
GIB = 1024**3


def real_tokens(inputs: dict[str, Any]) -> int:
    mask = inputs.get("attention_mask")
    if mask is not None:
        return int((mask != 0).sum())
    labels = inputs.get("input_ids")
    return int(labels.numel()) if labels is not None else 0


def slots(inputs: dict[str, Any]) -> int:
    ids = inputs.get("input_ids")
    return int(ids.numel()) if ids is not None else 0


def _allocated() -> float | None:
    import torch

    return torch.cuda.memory_allocated() / GIB if torch.cuda.is_available() else None


def _peak() -> tuple[float | None, float | None]:
    import torch

    if not torch.cuda.is_available():
        return None, None
    return torch.cuda.max_memory_allocated() / GIB, torch.cuda.max_memory_reserved() / GIB


class Probe:
    def __init__(self, out: Path):
        self.out = Path(out)
        self.record: dict[str, Any] = {"steps": [], "tokens": 0, "slots": 0, "memory": {}}
        self._step_tokens = 0
        self._last = None

    def loaded(self) -> None:
        self.record["memory"]["after_load_gib"] = _allocated()

    def count(self, inputs: dict[str, Any]) -> None:
        n = real_tokens(inputs)
        self._step_tokens += n
        self.record["tokens"] += n
        self.record["slots"] += slots(inputs)

    def step_begin(self) -> None:
        if self._last is None:
            self._last = time.perf_counter()

    def step_end(self, step: int) -> None:
        import torch

        if torch.cuda.is_available():
            torch.cuda.synchronize()
        now = time.perf_counter()
        self.record["steps"].append({"step": step, "seconds": now - (self._last or now), "tokens": self._step_tokens})
        self._last, self._step_tokens = now, 0
        if step == 1:
            self.record["memory"]["after_first_step_gib"] = _allocated()

    def write(self) -> None:
        peak, reserved = _peak()
        self.record["memory"].update(peak_allocated_gib=peak, peak_reserved_gib=reserved)
        self.out.parent.mkdir(parents=True, exist_ok=True)
        self.out.write_text(json.dumps(self.record))


def instrument(trainer, out: Path, probe: Probe | None = None) -> Probe:
    """Count the real tokens of every batch a training step receives and time each optimizer step."""
    from transformers import TrainerCallback

    probe = probe or Probe(out)
    step = trainer.training_step

    def counted_step(model, inputs, *args, **kwargs):
        probe.count(inputs)
        return step(model, inputs, *args, **kwargs)

    trainer.training_step = counted_step  # this trainer object only: the bench's own instrument

    class Timing(TrainerCallback):
        def on_step_begin(self, args, state, control, **kwargs):
            probe.step_begin()

        def on_step_end(self, args, state, control, **kwargs):
            probe.step_end(state.global_step)

        def on_train_end(self, args, state, control, **kwargs):
            if state.is_world_process_zero:
                probe.write()

    trainer.add_callback(Timing())
    return probe


def steady(record: dict[str, Any]) -> dict[str, Any]:
    """Tokens/s over the steps after the first (the first compiles kernels and warms the allocator)."""
    steps = record["steps"][1:] or record["steps"]
    seconds = sum(s["seconds"] for s in steps)
    tokens = sum(s["tokens"] for s in steps)
    return {
        "tokens": record["tokens"],
        "slots": record["slots"],
        "real_share": record["tokens"] / record["slots"] if record["slots"] else None,
        "timed_steps": len(steps),
        "timed_seconds": seconds,
        "tokens_per_s": tokens / seconds if seconds else None,
    }
