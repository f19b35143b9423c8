"""What a training process measures about itself, the same way wherever it is hooked in (axolotl's Trainer through
launch/telemetry_plugin.py in every `make train`; the seed-style baseline, bench/baseline_trainer.py):

- real tokens, counted from the batches the training steps receive: attention_mask != 0 (padding is 0; packed rows
  number their samples 1, 2, ...), and each sample's length, whose square sets the attention FLOPs;
- the time of each optimizer step (on_step_begin to on_step_end, the GPU synchronized), so evaluation and saving
  between steps are not counted;
- peak GPU memory, allocated and reserved, over the whole process: nothing is reset after loading, and a reset by
  anyone else (axolotl's memory logging resets the peak each time it logs) is folded in first;
- the peak RSS of this process and its children, sampled every 0.25 s (and ru_maxrss as a floor);
- the model's matmul weights (every nn.Linear, frozen and trained apart; embeddings are lookups, not counted) and
  its attention shape, on the model that trains.
Written as JSON (TELEMETRY_FILE in the output folder) when training ends. Standard library and torch only."""

from __future__ import annotations

import json
import resource
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

TELEMETRY_FILE = "telemetry.json"
GIB = 1024**3


def sample_lengths(inputs: Any) -> list[int]:
    """The real length of every sample in a batch: from the attention mask (a row of 1s is one padded sample; a
    packed row numbers its samples), else from position_ids restarting at 0, else whole rows. GRPO's trainer is
    handed its dataset rows (a list: it tokenizes what it generates inside the step): nothing to count."""
    import torch

    if not isinstance(inputs, Mapping):
        return []
    mask = inputs.get("attention_mask")
    if mask is not None and mask.dim() == 2:
        out: list[int] = []
        for row in mask.detach().to("cpu", torch.long):
            row = row[row > 0]
            if row.numel():
                counts = torch.bincount(row)[1:]
                out += [int(c) for c in counts if c > 0]
        return out
    positions = inputs.get("position_ids")
    if positions is not None and positions.dim() == 2:
        out = []
        for row in positions.detach().to("cpu"):
            starts = (row == 0).nonzero().flatten().tolist() or [0]
            bounds = [*starts, row.numel()]
            out += [b - a for a, b in zip(bounds, bounds[1:], strict=False) if b > a]
        return out
    ids = inputs.get("input_ids")
    return [int(ids.shape[-1])] * int(ids.shape[0]) if ids is not None and ids.dim() == 2 else []


def slots(inputs: Any) -> int:
    ids = inputs.get("input_ids") if isinstance(inputs, Mapping) else None
    return int(ids.numel()) if ids is not None else 0


def model_shape(model) -> dict[str, Any]:
    """Matmul weights (nn.Linear, bitsandbytes' 4-bit linears included) frozen and trained, and the attention shape
    (layers, query width) from the model's config."""
    import torch

    frozen = trained = 0
    for module in model.modules():
        weight = getattr(module, "weight", None)
        if isinstance(module, torch.nn.Linear) and weight is not None:
            n = int(module.in_features) * int(module.out_features)
            if weight.requires_grad:
                trained += n
            else:
                frozen += n
    cfg = getattr(model, "config", None)
    text = getattr(cfg, "text_config", None) or cfg
    heads = int(getattr(text, "num_attention_heads", 0) or 0)
    head_dim = getattr(text, "head_dim", None) or (int(getattr(text, "hidden_size", 0) or 0) // max(heads, 1))
    return {
        "matmul_frozen": frozen,
        "matmul_trained": trained,
        "layers": int(getattr(text, "num_hidden_layers", 0) or 0),
        "attention_width": heads * int(head_dim or 0),
    }


class RssSampler:
    """Peak RSS of this process and its children, sampled in a daemon thread."""

    def __init__(self, every_s: float = 0.25):
        self.every_s = every_s
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> RssSampler:
        self._thread.start()
        return self

    def _run(self) -> None:
        import psutil

        me = psutil.Process()
        while not self._stop.is_set():
            try:
                self.peak = max(self.peak, sum(p.memory_info().rss for p in [me, *me.children(recursive=True)]))
            except psutil.Error:
                pass
            self._stop.wait(self.every_s)

    def stop(self) -> int:
        self._stop.set()
        floor = max(resource.getrusage(who).ru_maxrss for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN))
        return max(self.peak, floor * 1024)  # ru_maxrss is in KiB on Linux


class GpuPeak:
    """max_memory_allocated / max_memory_reserved over the whole process: torch.cuda.reset_peak_memory_stats is
    wrapped so that the peak before any reset is kept."""

    def __init__(self) -> None:
        self.allocated = 0
        self.reserved = 0
        import torch

        self.cuda = torch.cuda.is_available()
        if self.cuda and not getattr(torch.cuda.reset_peak_memory_stats, "_telemetry", False):
            original = torch.cuda.reset_peak_memory_stats

            def reset(device=None):
                self.fold()
                return original(device)

            reset._telemetry = True  # type: ignore[attr-defined]
            torch.cuda.reset_peak_memory_stats = reset
            torch.cuda.memory.reset_peak_memory_stats = reset

    def fold(self) -> None:
        if self.cuda:
            import torch

            self.allocated = max(self.allocated, torch.cuda.max_memory_allocated())
            self.reserved = max(self.reserved, torch.cuda.max_memory_reserved())

    def gib(self) -> tuple[float | None, float | None]:
        self.fold()
        return (self.allocated / GIB, self.reserved / GIB) if self.cuda else (None, None)


class Probe:
    def __init__(self, out: Path):
        import torch

        self.out = Path(out)
        self.rss = RssSampler().start()
        self.gpu = GpuPeak()
        self.record: dict[str, Any] = {
            "device": torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu",
            "steps": [],
            "tokens": 0,
            "slots": 0,
            "model": None,
        }
        self._step: dict[str, Any] = {"tokens": 0, "slots": 0, "sq": 0, "samples": 0}
        self._begin: float | None = None

    def model(self, model) -> None:
        self.record["model"] = model_shape(model)

    def count(self, inputs: dict[str, Any]) -> None:
        lengths = sample_lengths(inputs)
        n, s = sum(lengths), slots(inputs)
        self._step["tokens"] += n
        self._step["slots"] += s
        self._step["sq"] += sum(x * (x + 1) for x in lengths)
        self._step["samples"] += len(lengths)
        self.record["tokens"] += n
        self.record["slots"] += s

    def step_begin(self) -> None:
        self._begin = time.perf_counter()

    def step_end(self, step: int) -> None:
        import torch

        if torch.cuda.is_available():
            torch.cuda.synchronize()
        now = time.perf_counter()
        seconds = now - self._begin if self._begin is not None else None
        self.record["steps"].append({"step": step, "seconds": seconds, **self._step})
        self._step = {"tokens": 0, "slots": 0, "sq": 0, "samples": 0}
        self._begin = None

    def write(self) -> dict[str, Any]:
        allocated, reserved = self.gpu.gib()
        self.record.update(
            peak_gpu_allocated_gib=allocated, peak_gpu_reserved_gib=reserved, peak_rss_gib=self.rss.stop() / GIB
        )
        self.out.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.out.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.record))
        tmp.replace(self.out)
        return self.record


def instrument(trainer, probe: Probe) -> Probe:
    """Count the batches every training step receives (this trainer object only) and time each optimizer step."""
    from transformers import TrainerCallback

    step = trainer.training_step

    def counted_step(model, inputs, *args, **kwargs):
        probe.count(inputs)
        return step(model, inputs, *args, **kwargs)

    trainer.training_step = counted_step

    class Timing(TrainerCallback):
        def on_train_begin(self, args, state, control, model=None, **kwargs):
            probe.model(model if model is not None else trainer.model)

        def on_step_begin(self, args, state, control, **kwargs):
            probe.step_begin()

        def on_step_end(self, args, state, control, **kwargs):
            probe.step_end(state.global_step)

        def on_train_end(self, args, state, control, **kwargs):
            if state.is_world_process_zero:
                probe.write()

    trainer.add_callback(Timing())
    return probe
