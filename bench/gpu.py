"""The GPU part of `make bench`, only where CUDA is present: tokens/s/GPU, MFU and peak memory of our
recipe (bf16, flash-attention, packing, Liger as the recipe sets them) vs the seed-style baseline, on
same-shape random-weight models built from the recipe's architecture numbers (throughput does not depend
on the weights' values). MFU = 6 x parameters x tokens/s / the GPU's dense bf16 peak."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from bench.cpu import run_baseline, train_ours
from core.paths import REPO

RECIPES = ("llama31-8b-instruct", "qwen25-3b-instruct-brie")
BF16_PEAK_TFLOPS = {
    "H100": 989.0,
    "H200": 989.0,
    "A100": 312.0,
    "A40": 149.7,
    "L40S": 362.0,
    "L4": 121.0,
    "RTX 4090": 165.2,
    "RTX 5090": 209.5,
}


def peak_tflops(name: str) -> float | None:
    return next((v for k, v in BF16_PEAK_TFLOPS.items() if k.lower() in name.lower()), None)


def same_shape_model(recipe: str, out: Path) -> tuple[Path, float]:
    """Random weights in the recipe's architecture, with a real tokenizer (SmolLM2's, vocab padded)."""
    import torch
    import transformers
    from transformers import AutoConfig, AutoTokenizer

    from launch.recipe.architecture import facts_for
    from launch.recipe.registry import load_recipe
    from tools.tiny_models import smollm2_dir

    base = load_recipe(recipe).config["base_model"]
    facts = facts_for(base)
    raw = dict(facts["config"])
    config = AutoConfig.for_model(raw.pop("model_type"), **raw)
    with torch.device("cuda"):
        model = getattr(transformers, facts["architecture"])._from_config(config, dtype=torch.bfloat16)
    model.save_pretrained(out)
    AutoTokenizer.from_pretrained(smollm2_dir()).save_pretrained(out)
    params = sum(p.numel() for p in model.parameters())
    del model
    torch.cuda.empty_cache()
    return out, params


def compare(recipe: str, steps: int, work: Path) -> dict[str, Any]:
    import torch

    model_dir, params = same_shape_model(recipe, work / f"{recipe}-random")
    args = f"--base_model={model_dir} --max_steps={steps} --save_steps={steps} --eval_steps=null --test_datasets=null"
    run, log, train_s, _ = train_ours(recipe, args, work)
    peak = max((float(x) for x in re.findall(r"'memory/max_allocated \(GiB\)': '?([0-9.]+)", log)), default=None)
    import yaml

    from bench.cpu import packing

    cfg = yaml.safe_load((run / "config.yaml").read_text())
    # packed rows of sequence_len tokens, each filled to the measured packing efficiency of this data
    pack = packing(cfg["micro_batch_size"], cfg["sequence_len"])["packed_real_share"]
    tokens = steps * cfg["micro_batch_size"] * cfg["gradient_accumulation_steps"] * cfg["sequence_len"] * pack
    gpu = torch.cuda.get_device_name(0)
    peak_flops = peak_tflops(gpu)
    ours_tps = tokens / train_s if tokens else None
    spec = {
        "model": str(model_dir),
        "data": str(REPO / "data/samples/philosophy_chat.train.jsonl"),
        "steps": steps,
        "micro_batch": 2,
        "accum": 4,
        "lr": 2e-4,
        "sequence_len": 2048,
        "lora_r": 16,
        "lora_alpha": 32,
        "targets": ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
        "output_dir": str(work / "baseline"),
    }
    b, _ = run_baseline(spec, work)

    def mfu(tps):
        return 6 * params * tps / (peak_flops * 1e12) if tps and peak_flops else None

    return {
        "recipe": recipe,
        "gpu": gpu,
        "params": params,
        "random_weights": True,
        "ours": {
            "tokens_per_s": ours_tps,
            "mfu": mfu(ours_tps),
            "peak_gpu_gb": peak,
            "train_s": train_s,
            "tokens_method": "steps x rows x sequence_len x packing efficiency",
        },
        "baseline": {"tokens_per_s": b["tokens_per_s"], "mfu": mfu(b["tokens_per_s"]), "peak_gpu_gb": b["peak_gpu_gb"]},
        "estimator": "not measured: the VRAM estimator (make plan) is not built yet",
    }


def run_gpu(steps: int, work: Path) -> dict[str, Any]:
    import torch

    if not torch.cuda.is_available():
        return {"status": "not measured: no GPU"}
    out = {"status": "measured", "results": []}
    for recipe in RECIPES:
        try:
            out["results"].append(compare(recipe, steps, work))
        except Exception as exc:  # noqa: BLE001 - one recipe not fitting must not lose the others' numbers
            out["results"].append({"recipe": recipe, "error": f"{type(exc).__name__}: {exc}"[:500]})
    return out
