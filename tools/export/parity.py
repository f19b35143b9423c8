"""HF merged model vs GGUF files: same chat-templated prompts, greedy decoding, token for token.

For the f16/f32 reference file the prompt token ids and the first N generated ids must match exactly, and
the GGUF must carry the chat template and the same eos; quantized files report their agreement.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

PROMPTS = [
    [{"role": "user", "content": "What is the capital of France?"}],
    [
        {"role": "system", "content": "You answer in one sentence."},
        {"role": "user", "content": "Why do we keep diaries?"},
    ],
    [{"role": "user", "content": "Write a haiku about the first snow."}],
]
N_TOKENS = 16


def prompt_texts(tokenizer) -> list[str]:
    if not tokenizer.chat_template:
        return [p[-1]["content"] for p in PROMPTS]
    return [tokenizer.apply_chat_template(p, tokenize=False, add_generation_prompt=True) for p in PROMPTS]


def hf_side(merged: Path) -> tuple[Any, list[list[int]], list[list[int]]]:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(merged)
    model = AutoModelForCausalLM.from_pretrained(merged, dtype=torch.float32)
    prompts, outputs = [], []
    for text in prompt_texts(tokenizer):
        ids = tokenizer(text, add_special_tokens=False, return_tensors="pt")
        with torch.no_grad():
            out = model.generate(
                **ids,
                max_new_tokens=N_TOKENS,
                do_sample=False,
                pad_token_id=tokenizer.pad_token_id or tokenizer.eos_token_id,
            )
        prompts.append(ids["input_ids"][0].tolist())
        outputs.append(out[0][ids["input_ids"].shape[1] :].tolist())
    return tokenizer, prompts, outputs


def gguf_side(path: Path, texts: list[str]) -> tuple[dict[str, Any], list[list[int]], list[list[int]]]:
    from llama_cpp import Llama

    llm = Llama(model_path=str(path), n_ctx=1024, verbose=False, logits_all=False, seed=0)
    try:
        meta = dict(llm.metadata)
        eos = llm.token_eos()
        prompts, outputs = [], []
        for text in texts:
            ids = llm.tokenize(text.encode(), add_bos=False, special=True)
            generated = []
            for tok in llm.generate(ids, top_k=1, temp=0.0, repeat_penalty=1.0, reset=True):
                generated.append(tok)
                if tok == eos or len(generated) >= N_TOKENS:
                    break
            prompts.append(list(ids))
            outputs.append(generated)
        return {"chat_template": meta.get("tokenizer.chat_template"), "eos_token_id": eos}, prompts, outputs
    finally:
        llm.close()


def agreement(a: list[list[int]], b: list[list[int]]) -> float:
    """Share of generated positions where both sides chose the same token (up to the first divergence)."""
    total = same = 0
    for x, y in zip(a, b, strict=True):
        n = max(len(x), len(y))
        total += n
        for i in range(min(len(x), len(y))):
            if x[i] != y[i]:
                break
            same += 1
    return same / total if total else 1.0


def compare(merged: Path, files: dict[str, Path], reference: str) -> dict[str, Any]:
    tokenizer, hf_prompts, hf_out = hf_side(merged)
    texts = prompt_texts(tokenizer)
    report: dict[str, Any] = {"prompts": len(texts), "n_tokens": N_TOKENS, "files": {}, "problems": []}
    for kind, path in files.items():
        meta, prompts, outputs = gguf_side(path, texts)
        report["files"][kind] = {
            "prompt_ids_match": prompts == hf_prompts,
            "agreement": agreement(hf_out, outputs),
            "generated": outputs,
        }
        if kind == reference:
            report["chat_template"] = bool(meta["chat_template"])
            report["eos_token_id"] = meta["eos_token_id"]
            if prompts != hf_prompts:
                report["problems"].append(f"{kind}: prompt token ids differ from the HF tokenizer's")
            if outputs != hf_out:
                report["problems"].append(f"{kind}: greedy tokens differ from the HF model's")
            if tokenizer.chat_template and not meta["chat_template"]:
                report["problems"].append(f"{kind}: the GGUF has no chat template")
            if meta["eos_token_id"] != tokenizer.eos_token_id:
                report["problems"].append(f"{kind}: eos id {meta['eos_token_id']} != HF {tokenizer.eos_token_id}")
    report["hf_generated"] = hf_out
    report["verdict"] = "fail" if report["problems"] else "pass"
    return report
