"""HF merged model vs GGUF files: same chat-templated prompts, greedy decoding, token for token.

For the f16/f32 reference file the prompt token ids must match exactly, and along the HF model's greedy reply
(teacher forcing: both models read the same prefix at every step) the GGUF must choose the HF model's token at
each of the first N positions, unless the two tokens are a tie for the HF model itself (within TIE nats of each
other: f16 rounding moves logits by about 1e-3 and may flip such a tie, which then changes every later token of a
free-running greedy reply). The GGUF must carry the chat template and the same eos. Quantized files report their
free-running greedy agreement (and their KL divergence: tools/export/quality.py).
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
# a step where the HF model's best two tokens are this close (in log-probability) is a tie: f16 may pick either
# (measured: 0.0013 nats between SmolLM2's top two after a 2-step LoRA flipped an f16 GGUF's greedy reply)
TIE = 0.01


def prompt_texts(tokenizer) -> list[str]:
    if not tokenizer.chat_template:
        return [p[-1]["content"] for p in PROMPTS]
    return [tokenizer.apply_chat_template(p, tokenize=False, add_generation_prompt=True) for p in PROMPTS]


def hf_side(merged: Path) -> tuple[Any, Any, list[list[int]], list[list[int]]]:
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
    return tokenizer, model, prompts, outputs


def hf_logprobs(model, prompt: list[int], reply: list[int]):
    """The HF model's log-probabilities for each reply position, reading the prompt and the reply before it."""
    import torch

    with torch.no_grad():
        logits = model(torch.tensor([prompt + reply])).logits[0].float()
    return torch.log_softmax(logits[len(prompt) - 1 : len(prompt) + len(reply) - 1], dim=-1)


def gguf_choices(path: Path, prompt: list[int], reply: list[int]) -> list[int]:
    """The GGUF's own best token at each reply position, reading the same prefix as the HF model (teacher forcing)."""
    import numpy as np
    from llama_cpp import Llama

    llm = Llama(model_path=str(path), n_ctx=len(prompt) + len(reply) + 8, logits_all=True, verbose=False)
    try:
        llm.eval(prompt + reply)
        scores = np.asarray(llm.scores[len(prompt) - 1 : len(prompt) + len(reply) - 1])
        return [int(i) for i in scores.argmax(axis=-1)]
    finally:
        llm.close()


def forced_disagreements(model, path: Path, prompts: list[list[int]], replies: list[list[int]]) -> list[str]:
    """Every position where the GGUF's choice is not the HF model's and not a tie for it (module doc)."""
    found = []
    for p, (prompt, reply) in enumerate(zip(prompts, replies, strict=True)):
        if not reply:
            continue
        lp = hf_logprobs(model, prompt, reply)
        for i, chosen in enumerate(gguf_choices(path, prompt, reply)):
            gap = float(lp[i, reply[i]] - lp[i, chosen])
            if chosen != reply[i] and gap > TIE:
                found.append(f"prompt {p + 1} token {i + 1}: the GGUF chose id {chosen}, {gap:.3f} nats below HF's")
    return found


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
    tokenizer, model, hf_prompts, hf_out = hf_side(merged)
    texts = prompt_texts(tokenizer)
    report: dict[str, Any] = {"prompts": len(texts), "n_tokens": N_TOKENS, "tie_nats": TIE, "files": {}, "problems": []}
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
            else:
                forced = forced_disagreements(model, path, hf_prompts, hf_out)
                report["files"][kind]["teacher_forced"] = forced or "every position agrees (ties allowed)"
                report["problems"] += [f"{kind}: {d}" for d in forced]
            if tokenizer.chat_template and not meta["chat_template"]:
                report["problems"].append(f"{kind}: the GGUF has no chat template")
            if meta["eos_token_id"] != tokenizer.eos_token_id:
                report["problems"].append(f"{kind}: eos id {meta['eos_token_id']} != HF {tokenizer.eos_token_id}")
    report["hf_generated"] = hf_out
    report["verdict"] = "fail" if report["problems"] else "pass"
    return report
