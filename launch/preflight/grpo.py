"""Preflight of a GRPO config (rl: grpo): what axolotl 0.21 / TRL would refuse or silently get wrong, stated before
anything loads. The generation batch (trl.generation_batch_size, else micro_batch_size x
gradient_accumulation_steps, per process) holds whole groups: num_generations (2 or more) divides it, and with
several processes each gets a group at least. max_completion_length is set (TRL would take 512) and, with the
longest prompt as the model's chat template renders it, fits sequence_len, which the plan and TRL's memory assume
(TRL truncates no prompt). The tokenizer's eos is the chat's end of turn, where generation stops. vLLM needs a GPU,
and its max_model_len holds prompt and completion. The reward functions: launch/preflight/grpo_rewards.py.

Defaults stated (TRL 1.14, axolotl 0.21): beta 0 when trl.beta is unset (then there is no reference model); with
beta > 0 the reference is the adapter-disabled policy under LoRA, a second copy for a full fine-tune."""

from __future__ import annotations

import math
from typing import Any

from data import sources
from data.entries import dataset_entries
from launch.preflight.findings import Finding
from launch.preflight.grpo_rewards import check_rewards
from resolver import facts
from resolver.resolve import Resolved

CHARS_PER_TOKEN = 3.7  # launch/preflight/estimate.py's, for prompts when no tokenizer is here


def beta_of(config: dict[str, Any]) -> float:
    """GRPO's KL weight as axolotl passes it (trl.beta, else rl_beta), else TRL's default 0."""
    trl = config.get("trl") or {}
    for value in (trl.get("beta"), config.get("rl_beta")):
        if isinstance(value, int | float):
            return float(value)
    return 0.0


def reference_of(config: dict[str, Any]) -> str:
    if beta_of(config) == 0:
        return "none (beta 0: no KL term)"
    if config.get("adapter") in ("lora", "qlora"):
        return "adapter-disabled policy (no second copy)"
    return "second model copy"


def generation_batch(config: dict[str, Any]) -> int:
    trl = config.get("trl") or {}
    if trl.get("generation_batch_size"):
        return int(trl["generation_batch_size"])
    return int(config.get("micro_batch_size") or 1) * int(config.get("gradient_accumulation_steps") or 1)


def generation_where(config: dict[str, Any]) -> str:
    trl, vllm = config.get("trl") or {}, config.get("vllm") or {}
    if not trl.get("use_vllm"):
        return "transformers generate in the training process"
    if trl.get("vllm_mode") == "colocate":
        return "vLLM colocated in the training process"
    host = trl.get("vllm_server_host") or vllm.get("host") or "0.0.0.0"
    return f"a vLLM server at {host}:{trl.get('vllm_server_port') or vllm.get('port') or 8000}"


def prompt_turns(record: Any) -> list[dict] | None:
    if not isinstance(record, dict):
        return None
    value = record.get("prompt") if record.get("prompt") is not None else record.get("messages")
    if isinstance(value, str):
        return [{"role": "user", "content": value}]
    return value if isinstance(value, list) else None


def prompt_lengths(r: Resolved) -> tuple[list[int], str, Finding | None]:
    """Tokens of every local training prompt with the generation header, how they were counted, and whether the
    tokenizer's eos is the chat's end of turn (TRL stops generating at the eos; None without a tokenizer)."""
    source = r.tokenizer_source()
    measure, how, eot = None, f"tokens (characters / {CHARS_PER_TOKEN}: no tokenizer here)", None
    if source:
        from launch.preflight.end_of_turn import _tokenizer
        from resolver.architecture import tokenizer_config
        from resolver.turns import named_template, render, terminator

        config = tokenizer_config(r.config, source, cache=r.settings.cache)
        tokenizer = _tokenizer(config)
        template = named_template(str(config.get("chat_template") or "tokenizer_default"), config, tokenizer)
        marks = (tokenizer.eos_token or "", tokenizer.bos_token or "")

        def measure(turns):
            text = render(template, turns, *marks, add_generation_prompt=True)
            return len(tokenizer(text, add_special_tokens=False)["input_ids"])

        how = "tokens with the chat template"
        eot = _end_of_turn(r, tokenizer, terminator(tokenizer, template))
    out = []
    for section, _, ds in dataset_entries(r.config):
        if section != "datasets" or not sources.is_local(ds):
            continue
        for row in sources.rows(ds, None):
            turns = prompt_turns(row.record)
            if turns:
                chars = sum(len(str(m.get("content") or "")) for m in turns if isinstance(m, dict))
                out.append(measure(turns) if measure else math.ceil(chars / CHARS_PER_TOKEN) + 8)
    return out, how, eot


def _end_of_turn(r: Resolved, tokenizer: Any, end: str | None) -> Finding:
    eos = tokenizer.eos_token
    if end is None or end == eos:
        return Finding("ok", "end of turn", f"generation stops at the eos {eos!r}, the chat's end of turn")
    return Finding(
        "error",
        "end of turn",
        f"the chat template ends a turn with {end!r}, but the tokenizer's eos is {eos!r}: TRL stops generating at "
        "the eos, so completions run on to max_completion_length and end_of_turn_reward scores every one 0",
        r.where("special_tokens"),
        f"special_tokens: {{eos_token: {end!r}}}",
    )


def _settings(r: Resolved) -> list[Finding]:
    config, trl = r.config, r.config.get("trl") or {}
    out, n = [], trl.get("num_generations")
    batch, world = generation_batch(config), 1 if r.device == "cpu" else max(r.meta.gpu.count if r.meta.gpu else 1, 1)
    if not isinstance(n, int) or n < 2:
        out.append(
            Finding(
                "error",
                "grpo",
                f"trl.num_generations is {n}: GRPO compares each completion with the others of its prompt, so it "
                "needs 2 or more (unset, TRL would take 8)",
                r.where("trl.num_generations"),
            )
        )
    elif batch % n:
        lcm = math.lcm(n, int(config.get("micro_batch_size") or 1))
        out.append(
            Finding(
                "error",
                "grpo",
                f"trl.num_generations {n} does not divide the generation batch {batch} (micro_batch_size x "
                "gradient_accumulation_steps, or trl.generation_batch_size): a prompt's group would be split",
                r.where("trl.num_generations"),
                f"gradient_accumulation_steps: {lcm // int(config.get('micro_batch_size') or 1)}, or num_generations "
                "a divisor of it",
            )
        )
    elif world > 1 and batch < n * world:
        out.append(
            Finding(
                "error",
                "grpo",
                f"{world} processes each need a whole group: the generation batch {batch} < {n} x {world}",
                r.where("gradient_accumulation_steps"),
            )
        )
    if trl.get("use_vllm") and r.device == "cpu":
        out.append(
            Finding(
                "error",
                "grpo",
                "trl.use_vllm: vLLM generates on a GPU; on a CPU TRL generates with transformers",
                r.where("trl.use_vllm"),
                "use_vllm: false on this machine (fragments/method/grpo.yaml's default)",
            )
        )
    return out


def _lengths(r: Resolved) -> list[Finding]:
    config, trl = r.config, r.config.get("trl") or {}
    seq, completion = int(config.get("sequence_len") or 2048), trl.get("max_completion_length")
    if not isinstance(completion, int) or completion < 1:
        return [
            Finding(
                "error",
                "grpo",
                "trl.max_completion_length is not set: TRL would generate up to 512 tokens, unplanned",
                r.where("trl.max_completion_length"),
            )
        ]
    if completion >= seq:
        return [
            Finding(
                "error",
                "grpo",
                f"trl.max_completion_length {completion} leaves no room for a prompt in sequence_len {seq}",
                r.where("trl.max_completion_length"),
            )
        ]
    return []


def check_grpo_lengths(r: Resolved) -> list[Finding]:
    """The prompts' lengths against sequence_len (a heavy check: the tokenizer)."""
    config, trl = r.config, r.config.get("trl") or {}
    seq, completion = int(config.get("sequence_len") or 2048), trl.get("max_completion_length")
    if config.get("rl") != "grpo" or _lengths(r) or not isinstance(completion, int):
        return []
    lengths, how, eot = prompt_lengths(r)
    out = [eot] if eot else []
    if not lengths:
        return [*out, Finding("warning", "grpo", "no local prompts to measure: lengths not checked")]
    longest, over = max(lengths), sum(n + completion > seq for n in lengths)
    limit = (config.get("vllm") or {}).get("max_model_len")
    if over:
        out.append(
            Finding(
                "error",
                "grpo",
                f"{over} of {len(lengths)} prompts plus max_completion_length {completion} exceed sequence_len {seq} "
                f"(longest prompt {longest} {how}); TRL truncates neither",
                r.where("sequence_len"),
                f"sequence_len: {longest + completion} or more, or a smaller trl.max_completion_length",
            )
        )
    else:
        out.append(
            Finding(
                "ok",
                "grpo",
                f"prompts up to {longest} {how} + {completion} generated tokens fit sequence_len {seq}",
            )
        )
    if trl.get("use_vllm") and isinstance(limit, int) and limit < longest + completion:
        out.append(
            Finding(
                "error",
                "grpo",
                f"vllm.max_model_len {limit} < the longest prompt {longest} + max_completion_length {completion}",
                r.where("vllm.max_model_len"),
            )
        )
    return out


def check_grpo(r: Resolved) -> list[Finding]:
    if r.config.get("rl") != "grpo":
        return []
    trl = r.config.get("trl") or {}
    start = f"; starts from run {r.start.run.name} of {r.start.recipe}" if r.start else ""
    out = [
        Finding(
            "ok",
            "grpo",
            f"rl: grpo, {trl.get('num_generations')} generations of up to {trl.get('max_completion_length')} tokens "
            f"per prompt (generation batch {generation_batch(r.config)}) by {generation_where(r.config)}, beta "
            f"{beta_of(r.config):g}, reference model: {reference_of(r.config)}{start}",
        )
    ]
    spec = r.recipe.meta.start_from
    if spec is not None and r.start is None and "base_model" not in r.overrides:
        out.append(
            Finding(
                "warning",
                "grpo",
                f"starts from the latest run of {spec.recipe}, which has none yet: checked with this recipe's own "
                "base model",
                r.where("meta.start_from"),
                f"make train RECIPE={spec.recipe}",
            )
        )
    out += _settings(r) + check_rewards(r)
    if not r.tokenizer_source() and not facts.is_path(r.hub_base_model):
        out.append(
            Finding("warning", "grpo", f"no tokenizer of {r.hub_base_model} here: prompts counted in characters")
        )
    return out + _lengths(r)
