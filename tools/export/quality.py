"""What a quant costs, measured the way llama.cpp's llama-perplexity measures it, through llama-cpp-python's
logits (Llama(logits_all=True)): the held-out text rendered through the chat template is tokenized once and
cut into chunks of n_ctx tokens; each chunk is evaluated from a fresh context (its first token replaced by BOS
when the vocabulary adds one) and only its second half is scored, so every scored token has at least n_ctx/2
tokens of context. Per quant, against the reference (f16) file on the same positions:

- mean KL divergence KL(P_ref || P_quant) of the next-token distributions (nats per token), its 99th
  percentile, and top-1 agreement (the same most likely next token);
- perplexity exp(mean NLL of the real next token), for the reference too.

Unlike greedy agreement, one early difference does not count every later token as wrong. A KL above the
quant type's limit (LIMITS: loose enough for a 135M model, far below what a damaged file gives) marks the file
broken."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np

from core.errors import UserError, Where
from tools.serve import defaults, gguf_info

N_CTX = 128  # small: a held-out split of a few dozen conversations still gives several chunks
MAX_CHUNKS = 16
MIN_CHUNKS = 2
# mean KL (nats/token) above which a file of that type is broken, by bits per weight of the type's name.
# llama.cpp's published figures for 7-8B models: Q8_0 ~0.001, Q6_K ~0.004, Q4_K_M ~0.02-0.03; small models
# lose more per bit, a damaged tensor gives > 1.
LIMITS = {32: 1e-4, 16: 1e-3, 8: 0.05, 6: 0.1, 5: 0.2, 4: 0.4, 3: 0.8, 2: 1.5, 1: 2.5}


def limit(kind: str) -> float:
    k = kind.upper()
    if k in ("F32", "F16", "BF16"):
        return LIMITS[32] if k == "F32" else LIMITS[16]
    m = re.match(r"^(?:I?Q|TQ)(\d)", k)
    return LIMITS.get(int(m.group(1)), LIMITS[2]) if m else LIMITS[4]


def held_out_conversations(config: dict) -> tuple[list[list[dict]], str]:
    """(conversations, where from) of the run's held-out split; the training data (said so) without one."""
    convs, source = defaults.conversations(config, "test_datasets")
    if convs:
        return convs, f"{source} (held-out)"
    convs, source = defaults.conversations(config, "datasets")
    return convs, f"{source} (training data: the run has no held-out split)"


def render_text(merged: Path, conversations: list[list[dict]]) -> str:
    """The conversations as the model sees them in training: through the merged tokenizer's chat template."""
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(merged)
    if not tok.chat_template:
        return "\n\n".join("\n".join(m["content"] for m in c) for c in conversations)
    return "".join(tok.apply_chat_template(c, tokenize=False) for c in conversations)


def load(path: Path, n_ctx: int):
    """(a Llama with all logits kept, does its vocabulary add BOS?), or a UserError naming the file."""
    from llama_cpp import Llama

    info = gguf_info.read(path)  # a truncated or foreign file: a clear error before llama.cpp tries it
    try:
        llm = Llama(model_path=str(path), n_ctx=n_ctx, n_batch=n_ctx, logits_all=True, verbose=False, seed=0)
        return llm, info.add_bos
    except (ValueError, RuntimeError) as exc:
        raise UserError(f"llama.cpp cannot load this GGUF ({exc})", Where(path), "rebuild it with make gguf") from None


def log_softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=-1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))


def chunks(llm, add_bos: bool, tokens: list[int], n_ctx: int, n_chunks: int):
    """(log-probs of the scored positions, the tokens they predict) per chunk, as llama-perplexity scores them."""
    first = n_ctx // 2
    bos = llm.token_bos()
    for c in range(n_chunks):
        chunk = list(tokens[c * n_ctx : (c + 1) * n_ctx])
        if add_bos and bos >= 0:
            chunk[0] = bos  # llama.cpp overwrites (does not prepend) the chunk's first token
        llm.reset()
        llm.eval(chunk)
        logits = np.asarray(llm.scores[first : n_ctx - 1], dtype=np.float64)
        yield log_softmax(logits), np.asarray(chunk[first + 1 : n_ctx])


def compare(reference: Path, files: dict[str, Path], text: str, n_ctx: int = N_CTX) -> dict[str, Any]:
    """KL, top-1 agreement and perplexity of each file in `files` against `reference` on `text`."""
    ref, add_bos = load(reference, n_ctx)
    try:
        tokens = ref.tokenize(text.encode(), add_bos=True, special=True)
        while n_ctx > 32 and len(tokens) < MIN_CHUNKS * n_ctx:
            n_ctx //= 2
        n_chunks = min(len(tokens) // n_ctx, MAX_CHUNKS)
        if n_chunks < 1:
            raise UserError(f"the held-out text is too short for a quality measure ({len(tokens)} tokens)")
        if n_ctx != N_CTX:
            ref.close()
            ref, add_bos = load(reference, n_ctx)
        # the reference's log-probs are kept (float32) to score every file on exactly the same positions
        base = [(lp.astype(np.float32), t) for lp, t in chunks(ref, add_bos, tokens, n_ctx, n_chunks)]
    finally:
        ref.close()
    ref_nll = np.concatenate([-lp[np.arange(len(t)), t] for lp, t in base])
    out: dict[str, Any] = {
        "n_ctx": n_ctx,
        "chunks": n_chunks,
        "tokens": len(tokens),
        "positions": int(len(ref_nll)),
        "reference": reference.name,
        "reference_ppl": float(np.exp(ref_nll.astype(np.float64).mean())),
        "files": {},
    }
    for kind, path in files.items():
        llm, add_bos = load(path, n_ctx)
        kl, nll, same = [], [], []
        try:
            for (b, t), (q, _) in zip(base, chunks(llm, add_bos, tokens, n_ctx, n_chunks), strict=True):
                b = b.astype(np.float64)
                kl.append((np.exp(b) * (b - q)).sum(axis=-1))  # KL(P_ref || P_quant) per position
                nll.append(-q[np.arange(len(t)), t])
                same.append(q.argmax(-1) == b.argmax(-1))
        finally:
            llm.close()
        kl_all, nll_all = np.concatenate(kl), np.concatenate(nll)
        r: dict[str, Any] = {"top1": float(np.concatenate(same).mean()), "kl_limit": limit(kind)}
        if np.isfinite(kl_all).all() and np.isfinite(nll_all).all():
            r.update(
                mean_kl=float(kl_all.mean()), kl_p99=float(np.percentile(kl_all, 99)), ppl=float(np.exp(nll_all.mean()))
            )
            r["broken"] = r["mean_kl"] > r["kl_limit"]
        else:  # NaN/inf logits: damaged scales (JSON has no NaN, so the figures stay empty)
            r.update(mean_kl=None, kl_p99=None, ppl=None, broken=True, nonfinite=True)
        out["files"][kind] = r
    return out


def problems(report: dict[str, Any]) -> list[str]:
    out = []
    for kind, r in report["files"].items():
        if r.get("nonfinite"):
            out.append(f"{kind}: the file gives NaN/infinite logits: it is broken")
        elif r["broken"]:
            out.append(
                f"{kind}: mean KL {r['mean_kl']:.4g} nats/token from {report['reference']} is above the {kind} "
                f"limit {r['kl_limit']:g}: the file looks broken"
            )
    return out
