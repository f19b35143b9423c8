"""The preflight estimate behind `make plan`: GPU memory per GPU, disk, time and dollars for a recipe.

Memory per GPU (GiB), summed then padded: total = 1.05 x (weights + trainable state + activations + logits) + 1.
  weights    bf16: 2 B/param. QLoRA: nf4 linears 0.5625 B/param (4 bits + an fp32 absmax per 64), the rest bf16.
             LoRA on an 8-bit base (load_in_8bit, method lora-8bit): int8 linears 1 B/param, the rest bf16.
  trainable  LoRA: params counted on the real architecture (meta device), fp32 weight 4 + grad 4 + Adam 8 B.
             full: grad 2 + fp32 master 4 + Adam 8 B on top of the bf16 weights.
  sharding   ZeRO-1 divides the optimizer state by the number of GPUs, ZeRO-2 also the gradients, ZeRO-3
             and FSDP also the weights; ZeRO-3 offload moves optimizer state and weights to CPU RAM.
  activations t = micro_batch x sequence_len tokens; per layer and token 16h + 8i bytes (bf16: attention
             inputs/outputs ~10h, norms 4h, gated MLP 2h + 8i; Korthikanti et al. 2022 adapted to SwiGLU).
             Gradient checkpointing keeps 2h per layer and token plus one layer. Attention follows the
             implementation (attention_of): eager materialises the seq x seq scores and their softmax, 4 x heads
             x seq bytes per layer and token; SDPA (transformers' default, memory-efficient kernels), flash,
             flex, xformers and sage store none (linear in seq, inside the 16h).
  logits     t x vocab x 8 B (fp32 logits and their gradient), zero with Liger's fused linear cross-entropy.
  the + 1 GiB and 5 %: CUDA context, cuBLAS workspaces, allocator fragmentation.
Time: FLOPs per token (flops_per_token): forward 2 x params, backward 2 x params for the activation gradients and
2 x trained params for the weight gradients, i.e. LoRA 4 x frozen + 6 x trained (the adapter), full 6 x params;
gradient checkpointing recomputes the forward (+2 x params, counted for time, not in MFU). Divided by GPUs x bf16
peak x an assumed MFU, plus the base model's download. Tokens: characters / 3.7 of the training files x epochs (no tokenizer needed offline).
Disk: base download + (save_total_limit + 1) checkpoints + final weights + merged model + GGUF f16/Q8_0/Q4_K_M.
The error is honest only to about +-25 % on memory and a factor of 2 on time: docs/check-and-plan.md, "How good is it".
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from core.errors import UserError, Where
from core.settings import Settings

GPU_TABLE = Path(__file__).with_name("gpus.yaml")
DEFAULT_MFU = 0.3  # what a GPU table without an mfu: line assumes (the shipped one says 0.30)
GIB = 1024**3
RESERVED_GIB = 0.5
NF4_BYTES = 0.5625  # 4 bits + an fp32 absmax per 64 weights
INT8_BYTES = 1.0  # bitsandbytes LLM.int8 weights (its per-row fp32 scales are under 0.1 %)
# axolotl's legacy attention flags, specific before generic (axolotl utils/schemas/enums.py LEGACY_ATTN_FLAG_TO_IMPL)
ATTENTION_FLAGS = {
    "xformers_attention": "xformers",
    "sage_attention": "sage",
    "flex_attention": "flex_attention",
    "flash_attention": "flash_attention_2",
    "sdp_attention": "sdpa",
    "eager_attention": "eager",
}
CHARS_PER_TOKEN = 3.7
GGUF_BYTES_PER_PARAM = {"f16": 2.0, "Q8_0": 1.0625, "Q4_K_M": 0.606}  # Q4_K_M ~4.85 bits/weight
SHARDED = {
    "none": set(),
    "ddp": set(),
    "zero1": {"opt"},
    "zero2": {"opt", "grad"},
    "zero3": {"opt", "grad", "weights"},
    "fsdp": {"opt", "grad", "weights"},
    "zero3-offload": {"opt", "grad", "weights"},
}


def gpu_table(path: Path | None) -> dict[str, Any]:
    """launch/preflight/gpus.yaml, or GPU_TABLE=<your copy> (`path`, the setting)."""
    return _read_table(str(path or GPU_TABLE))


@lru_cache(maxsize=4)
def _read_table(path: str) -> dict[str, Any]:
    return yaml.safe_load(Path(path).read_text())


def gpu(name: str, s: Settings) -> dict[str, Any]:
    """The GPU table's row of `name` (its price PRICE_PER_HOUR when set), with the table's assumed MFU."""
    whole = gpu_table(s.gpu_table)
    table = whole["gpus"]
    key = {k.lower(): k for k in table}.get(name.strip().lower())
    if key is None:
        raise UserError(
            f"GPU type '{name}' is not in the GPU table",
            Where(GPU_TABLE.name),
            f"known: {', '.join(table)}; add a row (vram_gib, bf16_tflops, usd_per_hour) for it",
        )
    row = dict(table[key], name=key, mfu=float(whole.get("mfu", DEFAULT_MFU)))
    price = s.price_per_hour
    if price is not None:
        row["usd_per_hour"] = price
        row["price_source"] = "PRICE_PER_HOUR"
    return row


@dataclass
class Model:
    params: int
    trainable: int
    quantizable: int  # Linear weights a 4-bit load quantizes (all but lm_head)
    hidden: int
    intermediate: int
    layers: int
    heads: int
    vocab: int
    kv_dim: int = 0  # key/value width per layer (kv heads x head dim; 0: unknown, the hidden size is used)


def model_facts(config: dict[str, Any], base_model: str, cache: Path) -> Model:
    from resolver import architecture as arch
    from resolver.facts import fetch_hint

    facts = arch.facts_for(base_model, cache=cache)
    if facts is None:
        raise UserError(
            f"no facts for '{base_model}' here (not a local folder, not in the HF cache, not in the facts tables): "
            "its size, memory and disk are unknown, so nothing can be planned for it",
            Where(key="base_model"),
            fetch_hint(base_model),
        )
    raw = facts["config"]
    text = raw.get("text_config") or raw
    _, params, linears = arch.architecture(base_model, cache=cache)
    if config.get("adapter") in ("lora", "qlora"):
        # no targets named: peft picks its defaults for the model type; counting every linear layer bounds it
        target = config.get("lora_target_modules") or ".*"
        target = ".*" if config.get("lora_target_linear") else target
        trainable = arch.lora_param_count(base_model, target, int(config.get("lora_r") or 8), cache=cache)
    else:
        trainable = params
    quantizable = sum(lin.in_features * lin.out_features for lin in linears if not lin.name.endswith("lm_head"))
    return Model(
        params,
        trainable,
        quantizable,
        text["hidden_size"],
        text["intermediate_size"],
        text["num_hidden_layers"],
        text["num_attention_heads"],
        text["vocab_size"],
        int(text.get("num_key_value_heads") or text["num_attention_heads"])
        * int(text.get("head_dim") or text["hidden_size"] // text["num_attention_heads"]),
    )


def attention_of(config: dict[str, Any]) -> str:
    """The attention implementation a config trains with: attn_implementation, else a legacy flag, else
    transformers' default for the model classes here, sdpa."""
    if config.get("attn_implementation"):
        return str(config["attn_implementation"])
    return next((impl for flag, impl in ATTENTION_FLAGS.items() if config.get(flag)), "sdpa")


def stores_scores(config: dict[str, Any]) -> bool:
    """Whether attention keeps the seq x seq score matrix: only eager does (SDPA's memory-efficient and flash
    kernels, flex, xformers and sage work in tiles, linear in seq)."""
    return attention_of(config) == "eager"


def base_weight_bytes(m: Model, config: dict[str, Any]) -> float:
    """The base model's weights: bf16, or its linear layers in 4 bits (QLoRA) or 8 bits (load_in_8bit)."""
    if config.get("adapter") == "qlora" or config.get("load_in_4bit"):
        return m.quantizable * NF4_BYTES + (m.params - m.quantizable) * 2
    if config.get("load_in_8bit"):
        return m.quantizable * INT8_BYTES + (m.params - m.quantizable) * 2
    return m.params * 2.0


@dataclass
class Memory:
    parts: dict[str, float]  # GiB per GPU, before padding
    total: float
    available: float
    strategy: str
    gpus: int

    @property
    def fits(self) -> bool:
        return self.total <= self.available


def memory(m: Model, config: dict[str, Any], strategy: str, world: int, vram_gib: float) -> Memory:
    n = world if strategy in SHARDED and world > 1 else 1
    shard = SHARDED.get(strategy, set())
    lora = config.get("adapter") in ("lora", "qlora")
    weights = base_weight_bytes(m, config)
    if lora:
        trained_w, grad, opt = m.trainable * 4.0, m.trainable * 4.0, m.trainable * 8.0
    else:
        trained_w, grad, opt = 0.0, m.params * 2.0, m.params * 12.0
    if "weights" in shard:
        weights, trained_w = weights / n, trained_w / n
    if "grad" in shard:
        grad /= n
    if "opt" in shard:
        opt /= n
    if strategy == "zero3-offload":
        layer = weights * n / max(m.layers, 1)
        weights, trained_w, opt = 2 * layer, 0.0, 0.0  # two layers gathered at a time stay on the GPU
    seq = int(config.get("sequence_len") or 2048)
    t = int(config.get("micro_batch_size") or 1) * seq
    per_token_layer = 16 * m.hidden + 8 * m.intermediate
    if stores_scores(config):
        per_token_layer += 4 * m.heads * seq
    if config.get("gradient_checkpointing"):
        acts = t * (2 * m.hidden * m.layers + per_token_layer)
    else:
        acts = t * per_token_layer * m.layers
    logits = 0.0 if config.get("liger_fused_linear_cross_entropy") else t * m.vocab * 8.0
    parts = {
        "weights": weights,
        "trainable": trained_w,
        "gradients": grad,
        "optimizer": opt,
        "activations": float(acts),
        "logits": logits,
    }
    parts = {k: v / GIB for k, v in parts.items()}
    total = 1.05 * sum(parts.values()) + 1.0
    return Memory(parts, total, vram_gib - RESERVED_GIB, strategy, world)


def training_tokens(config: dict[str, Any]) -> tuple[int, int]:
    """(tokens per epoch, rows) of the training files: characters / 3.7, rows truncated to sequence_len."""
    from data.entries import dataset_file

    seq = int(config.get("sequence_len") or 2048)
    tokens = rows = 0
    for ds in config.get("datasets") or []:
        path = dataset_file(ds)
        with open(path, encoding="utf-8") as fh:
            for line in fh:
                if line.strip():
                    rows += 1
                    tokens += min(seq, math.ceil(len(line) / CHARS_PER_TOKEN))
    return tokens, rows


FLOPS_FORMULA = "LoRA: 4 x frozen + 6 x trained (adapter) params per token; full: 6 x params"


def flops_per_token(m: Model, config: dict[str, Any], recompute: bool = True) -> float:
    """Training FLOPs per token (FLOPS_FORMULA); `recompute` adds gradient checkpointing's second forward (hardware
    FLOPs, for time; MFU counts model FLOPs only)."""
    if config.get("adapter") in ("lora", "qlora"):
        flops = 4.0 * m.params + 6.0 * m.trainable
    else:
        flops = 6.0 * m.params
    if recompute and config.get("gradient_checkpointing"):
        flops += 2.0 * m.params
    return flops


def train_seconds(m: Model, config: dict[str, Any], world: int, row: dict[str, Any], tokens: int) -> float:
    flops_per_tok = flops_per_token(m, config)
    epochs = float(config.get("num_epochs") or 1)
    max_steps = config.get("max_steps")
    if max_steps:
        per_step = (
            int(config.get("micro_batch_size") or 1)
            * int(config.get("gradient_accumulation_steps") or 1)
            * int(config.get("sequence_len") or 2048)
            * world
        )
        total = min(tokens * epochs, per_step * int(max_steps))
    else:
        total = tokens * epochs
    if not config.get("sample_packing"):
        total /= 0.74  # padding to the longest row in a batch: 26 % padding measured on the Brie data
    mfu = float(row.get("mfu", DEFAULT_MFU))
    return flops_per_tok * total / (world * row["bf16_tflops"] * 1e12 * mfu)


@dataclass
class Disk:
    parts: dict[str, float] = field(default_factory=dict)  # GB (1e9 bytes), as disks are sold

    @property
    def total(self) -> float:
        return sum(self.parts.values())


EXPORT_PARTS = ("merged model", "GGUF ")  # written by make merge / make gguf after training, not by make train


def is_export(part: str) -> bool:
    return part.startswith(EXPORT_PARTS)


def disk(
    m: Model, config: dict[str, Any], quants: tuple[str, ...] = ("Q8_0", "Q4_K_M"), downloads_base: bool = True
) -> Disk:
    lora = config.get("adapter") in ("lora", "qlora")
    keep = int(config.get("save_total_limit") or 1) + 1  # a new checkpoint is written before the oldest goes
    checkpoint = m.trainable * 12.0 if lora else m.params * 14.0
    parts = {
        "base model download": m.params * 2.0 if downloads_base else 0.0,
        f"checkpoints ({keep} kept at peak)": checkpoint * keep,
        "final weights": m.trainable * 4.0 if lora else m.params * 2.0,
        "merged model": m.params * 2.0 if lora else 0.0,
        "GGUF f16 + " + " + ".join(quants): m.params * sum(GGUF_BYTES_PER_PARAM[q] for q in ("f16", *quants)),
    }
    return Disk({k: v / 1e9 for k, v in parts.items() if v})


# Decoding reads every weight once per step, so memory bandwidth sets generation speed: a gpus.yaml row's
# hbm_gb_per_s (vendor datasheets); a row without it (an older GPU_TABLE copy) is assumed at this many GB/s.
DEFAULT_HBM_GB_PER_S = 1000.0
PROMPT_TOKENS = 256  # a suite prompt with its chat template, generous


@dataclass
class Evaluation:
    memory_gib: float  # the model in bf16 plus the KV cache of one batch
    judge_s: float  # the suite's prompts x (run + base) at the recipe's max_new_tokens, batched
    lmeval_s: float  # the held-out docs at lm-eval's max_gen_toks, one at a time (a bound: lm-eval batches on a GPU)
    batch: int
    bandwidth: float


def evaluation(m: Model, row: dict[str, Any], prompts: int, docs: int, max_new: int, max_gen_toks: int = 128,
               batch: int = 16) -> Evaluation:  # fmt: skip
    """Generation on the GPU in bf16: memory, and decode time bound by memory bandwidth (a step reads the weights
    once for the whole batch; prefill is small next to it)."""
    weights = m.params * 2.0
    kv_per_token = 2 * m.layers * (m.kv_dim or m.hidden) * 2.0  # keys and values of every layer, bf16
    kv = batch * (PROMPT_TOKENS + max_new) * kv_per_token
    bandwidth = float(row.get("hbm_gb_per_s") or DEFAULT_HBM_GB_PER_S)
    step = weights / (bandwidth * 1e9)
    judge = 2 * math.ceil(prompts / batch) * max_new * step
    return Evaluation(1.05 * (weights + kv) / GIB + 1.0, judge, docs * max_gen_toks * step, batch, bandwidth)


def volume_gb(disk_total_gb: float) -> int:
    """The volume to ask a cloud for: the disk estimate plus 20 %, in 10 GB steps."""
    return int(math.ceil(disk_total_gb * 1.2 / 10.0) * 10)


def summary_json(obj: Any) -> str:
    return json.dumps(obj, indent=2, default=lambda o: o.__dict__)
