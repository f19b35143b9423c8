"""What GRPO (rl: grpo) costs, for make plan (through launch/preflight/preference_cost.py): the estimator's formulas
(launch/preflight/estimate.py) on what TRL runs, plus generation.

Training: each batch row is one completion, trained at the longest prompt + max_completion_length tokens (not
sequence_len); tokens per epoch are prompts x num_generations x (mean prompt + max_completion_length), the
completions' upper bound. A reference model (beta > 0 only) costs a second bf16 copy for a full fine-tune (with
LoRA it is the adapter-disabled policy) and a forward pass on every token.
Generation, in the training process (no vLLM): the KV cache of one generation batch at its longest, bf16, on top
of training's memory; time: max_completion_length decode steps per generation batch, each reading every weight
once (bound by the GPU's memory bandwidth, gpus.yaml hbm_gb_per_s) plus transformers' per-step overhead
(HF_STEP_S, an assumption). On a vLLM server: its memory is on the server's own GPU (not counted here) and its
decode steps are bandwidth-bound only; training still waits for each batch (TRL's synchronous GRPO)."""

from __future__ import annotations

import math
from typing import Any

from data.entries import dataset_file
from launch.preflight import estimate as est
from launch.preflight.grpo import beta_of, generation_batch, generation_where, prompt_turns, reference_of

HF_STEP_S = 0.02  # transformers' generate: python and kernel-launch overhead per decode step (assumed)
HELDOUT_SHARE = 0.2  # eval/prefs_split.py's: a suite's training part is the other 80 %


def applies(config: dict[str, Any]) -> bool:
    return config.get("rl") == "grpo"


def completion_tokens(config: dict[str, Any]) -> int:
    return int((config.get("trl") or {}).get("max_completion_length") or 512)


def generations(config: dict[str, Any]) -> int:
    return int((config.get("trl") or {}).get("num_generations") or 8)


def prompts(config: dict[str, Any]) -> tuple[int, int, int]:
    """(prompts trained on, mean and longest prompt tokens), from the local training files (characters / 3.7,
    plus a chat header); a suite counts its training part only."""
    import json

    count, total, longest = 0, 0, 0
    for ds in config.get("datasets") or []:
        path, rows = dataset_file(ds), 0
        if not path.is_file():
            continue
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                turns = prompt_turns(json.loads(line)) if line.strip() else None
            except ValueError:
                turns = None
            if turns:
                n = math.ceil(sum(len(str(t.get("content") or "")) for t in turns) / est.CHARS_PER_TOKEN) + 8
                rows, total, longest = rows + 1, total + n, max(longest, n)
        count += round(rows * (1 - HELDOUT_SHARE)) if ds.get("type") == "eval.grpo_suite" else rows
    mean = math.ceil(total / count) if count else 64
    return count, mean, longest or 64


def trained_length(config: dict[str, Any]) -> int:
    """The length a completion is trained at: the longest prompt + max_completion_length, within sequence_len."""
    return min(int(config.get("sequence_len") or 2048), prompts(config)[2] + completion_tokens(config))


def kv_cache_bytes(m: est.Model, config: dict[str, Any]) -> float:
    """One generation batch's keys and values at full length, bf16, in the training process (0 on vLLM)."""
    if (config.get("trl") or {}).get("use_vllm"):
        return 0.0
    per_token = 2 * m.layers * (m.kv_dim or m.hidden) * 2.0
    return generation_batch(config) * trained_length(config) * per_token


def memory(m: est.Model, config: dict[str, Any], strategy: str, world: int, vram_gib: float) -> est.Memory:
    mem = est.memory(m, {**config, "sequence_len": trained_length(config)}, strategy, world, vram_gib)
    shards = world if "weights" in est.SHARDED.get(strategy, set()) and world > 1 else 1
    reference = (2.0 * m.params if reference_of(config) == "second model copy" else 0.0) / shards / est.GIB
    generation = kv_cache_bytes(m, config) / est.GIB
    parts = {**mem.parts, "reference": reference, "generation (KV cache)": generation}
    return est.Memory(parts, mem.total + 1.05 * (reference + generation), mem.available, mem.strategy, mem.gpus)


def training_tokens(config: dict[str, Any]) -> tuple[int, int]:
    """(tokens per epoch, prompts): every prompt's group of completions at mean prompt + max_completion_length."""
    count, mean, _ = prompts(config)
    return count * generations(config) * (mean + completion_tokens(config)), count


def completions_total(config: dict[str, Any], world: int) -> int:
    count = prompts(config)[0]
    per_step = int(config.get("micro_batch_size") or 1) * int(config.get("gradient_accumulation_steps") or 1) * world
    total = count * generations(config) * float(config.get("num_epochs") or 1)
    return int(min(total, per_step * int(config["max_steps"])) if config.get("max_steps") else total)


def generation_seconds(m: est.Model, config: dict[str, Any], world: int, row: dict[str, Any]) -> float:
    """Decode time: generation batches per process x max_completion_length steps x (weights / bandwidth, plus
    transformers' overhead without vLLM)."""
    bandwidth = float(row.get("hbm_gb_per_s") or est.DEFAULT_HBM_GB_PER_S) * 1e9
    step = est.base_weight_bytes(m, config) / bandwidth
    if not (config.get("trl") or {}).get("use_vllm"):
        step += HF_STEP_S
    batches = math.ceil(completions_total(config, world) / (generation_batch(config) * world))
    return batches * completion_tokens(config) * step


def train_seconds(m: est.Model, config: dict[str, Any], world: int, row: dict[str, Any], tokens: int) -> float:
    """Training (forward and backward on every completion), the reference's forward when beta > 0, and generation."""
    shaped = {**config, "sequence_len": trained_length(config)}
    seconds = est.train_seconds(m, shaped, world, row, tokens)
    if beta_of(config) > 0:
        seconds *= 1 + 2.0 * m.params / est.flops_per_token(m, config)
    return seconds + generation_seconds(m, config, world, row)


def plan_line(config: dict[str, Any], m: est.Model | None = None, row: dict | None = None, world: int = 1) -> str:
    trl = config.get("trl") or {}
    line = (
        f"GRPO: {generations(config)} completions of up to {completion_tokens(config)} tokens per prompt, generation "
        f"batch {generation_batch(config)}, by {generation_where(config)}; reference model: {reference_of(config)}; "
        f"{len(trl.get('reward_funcs') or [])} reward functions"
    )
    if m is None or row is None:
        return line
    gen_s, kv = generation_seconds(m, config, world, row), kv_cache_bytes(m, config) / est.GIB
    where = (
        f"KV cache {kv:.1f} GiB in training's memory"
        if kv
        else "its memory on the vLLM server's own GPU (weights + KV cache, not counted here)"
    )
    took = f"~{gen_s:.0f} s" if gen_s < 120 else f"~{gen_s / 60:.0f} min"
    return f"{line}; generation {took} of the training time, {where}"
