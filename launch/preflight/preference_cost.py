"""What a preference method (rl: dpo/ipo/simpo/orpo/kto; GRPO: launch/preflight/grpo_cost.py) costs, for make plan and the launcher's fits decision:
the estimator's formulas (launch/preflight/estimate.py) on what TRL really runs. Each batch row is two sequences
(a pair's chosen and rejected, or a KTO completion and its mismatched KL twin); the reference model is a second
bf16 copy only for a full fine-tune of DPO/IPO/KTO (with LoRA it is the adapter-disabled policy, and ORPO/SimPO
have none), and its forward pass runs on every sequence. Other configs pass through unchanged."""

from __future__ import annotations

import math
from typing import Any

from launch.preflight import estimate as est
from launch.preflight import grpo_cost
from launch.preflight.preference import METHODS, reference_of


def sequences_per_row(config: dict[str, Any]) -> int:
    """Sequences each batch row becomes: a pair is its chosen and its rejected sequence, trained together; a KTO
    completion is scored twice (itself, and mismatched against another prompt for the KL estimate)."""
    return 2 if config.get("rl") in METHODS else 1


def reference_bytes(params: int, config: dict[str, Any]) -> float:
    """GPU memory of the reference model: a second bf16 copy for a full fine-tune of DPO/IPO/KTO; nothing with
    LoRA (the adapter-disabled policy) or for ORPO/SimPO (reference-free)."""
    return 2.0 * params if reference_of(config) == "second model copy" else 0.0


def reference_flops_per_token(params: int, config: dict[str, Any]) -> float:
    """The reference's forward pass on every sequence (no gradients): 2 x params per token, or 0 without one."""
    return 0.0 if reference_of(config).startswith("none") else 2.0 * params


def pair_characters(record: Any) -> int | None:
    """Characters a preference record trains on: the prompt once per side plus each side; None if not one."""
    from data import preferences as prefs

    fmt = prefs.detect(record)
    if fmt is None:
        return None
    try:
        item = prefs.read(record, fmt)
    except prefs.PreferenceError:
        return None
    prompt = sum(len(t["content"]) for t in item.prompt)
    if isinstance(item, prefs.Judged):
        return 2 * (prompt + len(item.completion))
    return 2 * prompt + len(item.chosen) + len(item.rejected)


def memory(m: est.Model, config: dict[str, Any], strategy: str, world: int, vram_gib: float) -> est.Memory:
    if grpo_cost.applies(config):
        return grpo_cost.memory(m, config, strategy, world, vram_gib)
    if config.get("rl") not in METHODS:
        return est.memory(m, config, strategy, world, vram_gib)
    rows = int(config.get("micro_batch_size") or 1) * sequences_per_row(config)
    mem = est.memory(m, {**config, "micro_batch_size": rows}, strategy, world, vram_gib)
    shards = world if "weights" in est.SHARDED.get(strategy, set()) and world > 1 else 1
    reference = reference_bytes(m.params, config) / shards / est.GIB
    parts = {**mem.parts, "reference": reference}
    return est.Memory(parts, mem.total + 1.05 * reference, mem.available, mem.strategy, mem.gpus)


def training_tokens(config: dict[str, Any]) -> tuple[int, int]:
    """(tokens per epoch, rows): each pair's prompt counted once per side, each side truncated to sequence_len."""
    if grpo_cost.applies(config):
        return grpo_cost.training_tokens(config)
    if config.get("rl") not in METHODS:
        return est.training_tokens(config)
    import json

    from data.entries import dataset_file

    seq = int(config.get("sequence_len") or 2048)
    tokens = rows = 0
    for ds in config.get("datasets") or []:
        with open(dataset_file(ds), encoding="utf-8") as fh:
            for line in fh:
                if not line.strip():
                    continue
                rows += 1
                try:
                    chars = pair_characters(json.loads(line))
                except ValueError:
                    chars = None
                chars = chars if chars is not None else 2 * len(line)
                tokens += min(2 * seq, math.ceil(chars / est.CHARS_PER_TOKEN))
    return tokens, rows


def train_seconds(m: est.Model, config: dict[str, Any], world: int, row: dict[str, Any], tokens: int) -> float:
    """The estimator's time, plus the reference model's forward pass on the same tokens."""
    if grpo_cost.applies(config):
        return grpo_cost.train_seconds(m, config, world, row, tokens)
    seconds = est.train_seconds(m, config, world, row, tokens)
    if config.get("rl") not in METHODS:
        return seconds
    return seconds * (1 + reference_flops_per_token(m.params, config) / est.flops_per_token(m, config))


def plan_line(
    config: dict[str, Any], m: est.Model | None = None, row: dict | None = None, world: int = 1
) -> str | None:
    if grpo_cost.applies(config):
        return grpo_cost.plan_line(config, m, row, world)
    if config.get("rl") not in METHODS:
        return None
    return (
        f"preference: rl {config['rl']}, reference model: {reference_of(config)}; {sequences_per_row(config)} "
        "sequences per row in memory and time"
        + ("; the reference's forward pass on every sequence" if reference_flops_per_token(1, config) else "")
    )
