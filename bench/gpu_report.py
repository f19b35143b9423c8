"""The GPU bench's report (bench/gpu.py): the machine, per recipe the plan's memory per part against the measured
one, packing on the Brie data, and last one summary table: tokens/s of ours and the baseline (real tokens from
the batches), the speed-up, MFU with the estimator's FLOPs formula, peak memory against the plan."""

from __future__ import annotations

import platform
from typing import Any

from launch.preflight import estimate as est


def machine(steps: int, argv: list[str]) -> dict[str, Any]:
    import importlib.metadata as md

    import torch

    versions = {}
    for name in ("torch", "transformers", "peft", "accelerate", "axolotl", "trl", "datasets", "liger_kernel"):
        try:
            versions[name] = md.version(name)
        except md.PackageNotFoundError:
            versions[name] = None
    return {
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "cuda": torch.version.cuda,
        "python": platform.python_version(),
        "packages": versions,
        "steps": steps,
        "command": "python -m bench.gpu " + " ".join(argv),
    }


def _f(x: float | None, fmt: str = "{:.1f}") -> str:
    return "-" if x is None else fmt.format(x)


def memory_rows(x: dict[str, Any]) -> list[str]:
    """The plan's parts against what the probe measured on our side (GiB)."""
    p, mem = x["plan"]["parts_gib"], x["ours"]["memory"]
    load, step1, peak = mem.get("after_load_gib"), mem.get("after_first_step_gib"), mem.get("peak_allocated_gib")
    opt = step1 - load if step1 is not None and load is not None else None
    transient = peak - step1 if peak is not None and step1 is not None else None
    return [
        f"| weights + trainable (after load) | {p['weights'] + p['trainable']:.2f} | {_f(load, '{:.2f}')} |",
        f"| optimizer state (after the first step, less the load) | {p['optimizer']:.2f} | {_f(opt, '{:.2f}')} |",
        f"| gradients + activations + logits (peak, less the first step) | "
        f"{p['gradients'] + p['activations'] + p['logits']:.2f} | {_f(transient, '{:.2f}')} |",
        f"| total (plan: x 1.05 + 1 GiB; measured: peak reserved) | {x['plan']['total_gib']:.2f} | "
        f"{_f(mem.get('peak_reserved_gib'), '{:.2f}')} |",
    ]


def markdown(r: dict[str, Any], budget_s: float) -> str:
    meta = r.get("meta", {})
    out = [
        "# GPU bench: ours vs the seed-style baseline",
        "",
        f"- machine: {meta.get('gpu') or 'no GPU (--cpu: a run of the script, not a measurement)'}, CUDA "
        f"{meta.get('cuda')}, Python {meta.get('python')}",
        "- versions: " + ", ".join(f"{k} {v}" for k, v in (meta.get("packages") or {}).items() if v),
        f"- command: `{meta.get('command')}`; {meta.get('steps')} steps per side; tokens/s over the steps after the first",
        f"- FLOPs per token: {r.get('flops_formula', est.FLOPS_FORMULA)}; MFU counts these model FLOPs (gradient "
        "checkpointing's recompute not counted) over the GPU's dense bf16 peak (launch/preflight/gpus.yaml)",
        f"- status: {r['status']}"
        + (f", {r['seconds'] / 60:.1f} min in all (budget {budget_s / 60:.0f} min)" if "seconds" in r else ""),
    ]
    pk = r.get("packing") or {}
    if pk.get("status") == "measured":
        out.append(
            f"- packing ({pk['sampler']}, {pk['source']}, sequence_len {pk['sequence_len']} x micro batch "
            f"{pk['micro_batch']}): {pk['packed_real_share']:.1%} of token slots real, padded batches "
            f"{pk['padded_real_share']:.1%}"
        )
    elif pk:
        out.append(f"- packing: {pk.get('status')}")
    for x in r["results"]:
        if "error" in x:
            continue
        out += [
            "",
            f"## {x['recipe']}: memory per GPU, plan vs measured (ours; GiB)",
            "",
            "| part | plan | measured |",
            "|---|---|---|",
            *memory_rows(x),
        ]
    out += [
        "",
        "| recipe | GPU | attention (ours) | ours tokens/s | baseline tokens/s | speed-up | ours MFU | baseline MFU "
        "| peak GiB ours (plan) | peak GiB baseline |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for x in r["results"]:
        if "error" in x:
            error = " / ".join(line.strip() for line in x["error"].splitlines() if line.strip())
            out.append(f"| {x['recipe']} | FAILED: {error[-300:].replace('|', '/')} | | | | | | | | |")
            continue
        o, b = x["ours"], x["baseline"]
        speed = o["tokens_per_s"] / b["tokens_per_s"] if o["tokens_per_s"] and b["tokens_per_s"] else None
        out.append(
            f"| {x['recipe']}{' (random weights)' if x['random_weights'] else ''} | {x['gpu']} | {x['attention']} | "
            f"{_f(o['tokens_per_s'], '{:.0f}')} | {_f(b['tokens_per_s'], '{:.0f}')} | {_f(speed, '{:.2f}x')} | "
            f"{_f(o['mfu'], '{:.1%}')} | {_f(b['mfu'], '{:.1%}')} | {_f(o['peak_gpu_gb'])} ({x['plan']['total_gib']:.1f}) | "
            f"{_f(b['peak_gpu_gb'])} |"
        )
    return "\n".join(out) + "\n"
