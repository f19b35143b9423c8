"""From a training process's telemetry (launch/telemetry.py) to the figures a user reads: tokens/s over the steps
after the first few, MFU, peak memory, and `make plan`'s memory estimate for the same config on the same machine.
`make train` records them in the manifest's train section; `make gpu-check` computes both of its sides with the
same functions.

Model FLOPs per token: 4 x frozen + 6 x trained matmul weights (forward 2, activation gradients 2, weight gradients
2 for what trains), counted on the model that trained (embedding lookups are not matmuls; the LM head is), plus
attention: 6 x layers x query width x n(n+1) per sample of n real tokens (causal QK^T and AV, forward and
backward), from the samples' real lengths. Gradient checkpointing's recompute is not counted (model FLOPs, not
hardware FLOPs). MFU divides by the GPU's dense bf16 peak from launch/preflight/gpus.yaml; a GPU not in that table
is named as the reason there is no MFU, never silently dropped."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from core.sections import PlanMemory, TrainTelemetry
from core.settings import Settings
from launch.telemetry import TELEMETRY_FILE

MAX_WARM_STEPS = 3  # steps left out of the timing: kernel compilation, autotuning, the allocator's growth
FORMULA = (
    "model FLOPs per token = 4 x frozen + 6 x trained matmul weights (embeddings not counted; the LM head is), "
    "plus attention 6 x layers x query width x n(n+1) per sample of n real tokens; recompute not counted; "
    "MFU = model FLOPs/s / the GPU's dense bf16 peak (launch/preflight/gpus.yaml)"
)


class UnknownGpu(LookupError):
    pass


def warm_steps(n: int) -> int:
    return min(MAX_WARM_STEPS, n // 2)


def gpu_peak(name: str, table: Path | None) -> tuple[str, float]:
    """(the GPU table's row, dense bf16 TFLOP/s) for a CUDA device name: its runpod_id exactly, else the longest
    row name it contains. `table`: GPU_TABLE (None: the shipped one). UnknownGpu names the device and the table."""
    from launch.preflight import estimate as est

    rows = est.gpu_table(table)["gpus"]
    exact = [(k, r) for k, r in rows.items() if str(r.get("runpod_id", "")).lower() == name.lower()]
    loose = sorted(
        ((k, r) for k, r in rows.items() if k.lower().replace("-", " ") in name.lower()), key=lambda kr: -len(kr[0])
    )
    found = (exact or loose or [None])[0]
    if found is None:
        raise UnknownGpu(
            f"the GPU '{name}' is not in launch/preflight/gpus.yaml (no runpod_id or row name matches): "
            "add its row (bf16_tflops from the vendor's datasheet) to get an MFU"
        )
    return found[0], float(found[1]["bf16_tflops"])


def timed(record: dict[str, Any]) -> dict[str, Any]:
    """Tokens, seconds and attention work over the steps after the warm ones."""
    steps = [s for s in record.get("steps", []) if s.get("seconds") is not None]
    kept = steps[warm_steps(len(steps)) :]
    seconds = sum(s["seconds"] for s in kept)
    tokens = sum(s["tokens"] for s in kept)
    model = record.get("model") or {}
    attention = 6.0 * model.get("layers", 0) * model.get("attention_width", 0) * sum(s["sq"] for s in kept)
    return {
        "steps": len(record.get("steps", [])),
        "timed_steps": len(kept),
        "timed_seconds": seconds or None,
        "timed_tokens": tokens,
        "tokens_per_s": tokens / seconds if seconds and tokens else None,  # GRPO's batches: no tokens counted
        "attention_flops": attention if model else None,
    }


def flops_per_token(record: dict[str, Any]) -> float | None:
    model = record.get("model")
    return 4.0 * model["matmul_frozen"] + 6.0 * model["matmul_trained"] if model else None


def mfu(record: dict[str, Any], table: Path | None) -> tuple[float | None, float | None, str]:
    """(MFU, the peak TFLOP/s used, a note saying which row or why none); `table` as in gpu_peak."""
    device = record.get("device") or "cpu"
    t, dense = timed(record), flops_per_token(record)
    if device == "cpu":
        return None, None, "CPU: MFU is a GPU figure"
    try:
        row, peak = gpu_peak(device, table)
    except UnknownGpu as exc:
        return None, None, str(exc)
    if not t["timed_seconds"] or dense is None:
        return None, peak, "no timed step to measure"
    if not t["timed_tokens"]:
        return None, peak, "no tokens counted (GRPO tokenizes what it generates inside the step)"
    flops = dense * t["timed_tokens"] + (t["attention_flops"] or 0.0)
    return flops / t["timed_seconds"] / (peak * 1e12), peak, f"{row} dense bf16 peak {peak:g} TFLOP/s"


def plan_memory(config: dict[str, Any], base_model: str, strategy: str, world: int, cache: Path) -> PlanMemory:
    """`make plan`'s estimate (launch/preflight/estimate.py memory) of the config on this machine's GPU."""
    from launch.preflight import estimate as est

    vram = None
    try:
        import torch

        if torch.cuda.is_available():
            vram = torch.cuda.get_device_properties(0).total_memory / est.GIB
    except ImportError:
        pass
    m = est.model_facts(config, base_model, cache)
    mem = est.memory(m, config, strategy, world, vram or 0.0)
    parts = {k: round(v, 4) for k, v in mem.parts.items()}
    return PlanMemory(total_gib=round(mem.total, 4), parts_gib=parts, strategy=strategy, gpus=world, vram_gib=vram)


def summarize(record: dict[str, Any], table: Path | None, file: str | None = None) -> TrainTelemetry:
    """The manifest's figures from a telemetry record (no plan); `table` as in gpu_peak."""
    t = timed(record)
    value, peak, note = mfu(record, table)
    model = record.get("model") or {}
    return TrainTelemetry(
        device=record.get("device") or "cpu",
        file=file,
        tokens=record.get("tokens", 0),
        slots=record.get("slots", 0),
        flops_per_token=flops_per_token(record),
        matmul_frozen=model.get("matmul_frozen"),
        matmul_trained=model.get("matmul_trained"),
        peak_gpu_allocated_gib=record.get("peak_gpu_allocated_gib"),
        peak_gpu_reserved_gib=record.get("peak_gpu_reserved_gib"),
        peak_rss_gib=record.get("peak_rss_gib"),
        mfu=value,
        mfu_note=note,
        gpu_peak_tflops=peak,
        **t,
    )


def collect(run: Path, output_dir: Path, config: dict[str, Any], base_model: str, strategy: str,
            world: int, s: Settings) -> TrainTelemetry | None:  # fmt: skip
    """The run's telemetry with the plan beside it, or None when the training process wrote none."""
    from core import rundir
    from core.errors import UserError

    path = Path(output_dir) / TELEMETRY_FILE
    try:
        record = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None
    out = summarize(record, s.gpu_table, rundir.relpath(path, run))
    try:
        return out.model_copy(update={"plan": plan_memory(config, base_model, strategy, world, s.cache)})
    except UserError as exc:
        return out.model_copy(update={"plan_note": exc.message})
    except Exception as exc:  # noqa: BLE001 - a plan that cannot be computed must not fail a finished run
        return out.model_copy(update={"plan_note": f"the plan could not be computed ({type(exc).__name__}: {exc})"})


def line(t: TrainTelemetry) -> str:
    """The training summary's measured line."""

    def f(x: float | None, fmt: str) -> str:
        return "-" if x is None else fmt.format(x)

    parts = [f"{f(t.tokens_per_s, '{:.0f}')} tokens/s ({t.timed_steps} of {t.steps} steps timed, real tokens)"]
    if t.peak_gpu_allocated_gib is not None:
        parts.append(
            f"peak GPU {t.peak_gpu_allocated_gib:.2f} GiB allocated / {f(t.peak_gpu_reserved_gib, '{:.2f}')} reserved"
        )
    parts.append(f"peak RSS {f(t.peak_rss_gib, '{:.2f}')} GiB")
    if t.plan is not None:
        parts.append(f"plan {t.plan.total_gib:.2f} GiB per GPU")
    parts.append(f"MFU {t.mfu:.1%}" if t.mfu is not None else f"MFU - ({t.mfu_note})")
    return "measured: " + ", ".join(parts)


def cell(t: TrainTelemetry | dict | None) -> str:
    """One table cell: tokens/s, peak memory beside the plan, MFU (the leaderboard, the study report)."""
    if t is None:
        return "-"
    t = TrainTelemetry.model_validate(t) if isinstance(t, dict) else t
    out = "-" if t.tokens_per_s is None else f"{t.tokens_per_s:.0f} tok/s"
    plan = t.plan.total_gib if t.plan else None
    if t.peak_gpu_reserved_gib is not None:
        out += f", {t.peak_gpu_reserved_gib:.1f} GiB GPU" + (f" (plan {plan:.1f})" if plan else "")
    elif t.peak_rss_gib is not None:
        out += f", RSS {t.peak_rss_gib:.1f} GiB" + (f" (plan for a GPU {plan:.1f})" if plan else "")
    return out + (f", MFU {t.mfu:.0%}" if t.mfu is not None else "")
