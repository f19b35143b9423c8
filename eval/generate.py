"""Responses for judging: a prompt suite sampled from a model (merged, or base + adapter) with given settings,
generated where the model fits and fast, and cached per (model identity, backend, prompt, settings, seed) so a
crash or a re-run costs nothing twice and an answer of one backend is never taken for another's.

Backends (GEN_BACKEND=auto|hf|gguf; auto: hf on a GPU, else gguf when the run has a parity-checked GGUF, else hf):
  hf    transformers on the GPU in the recipe's dtype (bf16 where the GPU has it), prompts of the same settings in
        left-padded batches of GEN_BATCH (16 on a GPU; on CPU 1, in float32); each batch seeded with the seed.
  gguf  llama.cpp (llama-cpp-python, in process) on the run's parity-checked reference GGUF (make gguf), its own
        chat template, each prompt seeded with the seed: many times faster than transformers on a CPU. The model a
        run is compared with (its base) then goes through its own f16 GGUF, converted once, parity-checked and
        cached (tools/export/base_gguf.py), so both sides are generated the same way.
Same seed and sampling either way: temperature, top_p, no top-k, no min-p, no repetition penalty, the cap on new
tokens. A batched draw depends on its batch (the random stream is shared), so the batch's prompts are in its key."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from core import atomic
from core.errors import UserError, Where
from core.settings import Settings
from data.validate import read_jsonl

SUITE_FIELDS = ("suite", "config", "prompt", "temperature", "max_tokens")
GPU_BATCH = 16


def load_suite(path: Path, limit: int | None = None, sampling: dict | None = None) -> list[dict[str, Any]]:
    """Suite lines; a line's own temperature/max_tokens/top_p win (the seeds' variants), else the recipe's sampling."""
    s = {"temperature": 0.75, "max_new_tokens": 512, "top_p": None, **(sampling or {})}
    items = []
    for line, rec, err in read_jsonl(path):
        if err or not isinstance(rec, dict) or not isinstance(rec.get("prompt"), str):
            raise UserError(err or "a suite line needs a string 'prompt'", Where(path, line))
        items.append(
            {
                "suite": rec.get("suite", "all"),
                "config": rec.get("config", "all"),
                "prompt": rec["prompt"],
                "temperature": float(rec.get("temperature", s["temperature"])),
                "max_tokens": int(rec.get("max_tokens", s["max_new_tokens"])),
                "top_p": rec.get("top_p", s["top_p"]),
                "item": f"{rec.get('config', 'all')}#{line}",
            }
        )
    return items[:limit] if limit else items


def model_identity(base: str, adapter: Path | None, gguf: Path | None = None) -> str:
    """A stable id for what generates: hashes of the weights files (or the base path for hub models)."""
    h = hashlib.sha256(base.encode())
    for folder in [Path(base), adapter] if adapter else [Path(base)]:
        if folder and folder.is_dir():
            for f in sorted(folder.glob("*.safetensors")):
                h.update(f.name.encode() + str(f.stat().st_size).encode() + f.read_bytes()[: 1 << 20])
    if gguf is not None:
        h.update(gguf.name.encode() + str(gguf.stat().st_size).encode())
    return h.hexdigest()[:16]


def cache_key(identity: str, item: dict, seed: int, backend: str = "hf", batch: list[str] | None = None) -> str:
    spec = [identity, backend, item["prompt"], item["temperature"], item["top_p"], item["max_tokens"], seed]
    if batch and len(batch) > 1:
        spec.append(batch)
    return hashlib.sha256(json.dumps(spec).encode()).hexdigest()


def _settings(item: dict) -> tuple:
    return item["temperature"], item["top_p"], item["max_tokens"]


class Generator:
    """Loads the model once (on first use); generates with the chat template, sampling as each item says."""

    def __init__(
        self,
        base: str,
        adapter: Path | None = None,
        seed: int = 0,
        max_new_tokens: int | None = None,
        backend: str | None = None,
        gguf: Path | None = None,
        dtype: str | None = None,
        batch: int | None = None,
        *,
        s: Settings,
    ):
        self.base, self.adapter, self.seed, self.cap = base, adapter, seed, max_new_tokens
        self.gguf, self.dtype = gguf, dtype
        self.backend = resolve_backend(backend or s.gen_backend or "auto", gguf)
        cuda = _cuda()
        self.device = "cuda" if cuda and self.backend == "hf" else "cpu"
        self.batch = batch or s.gen_batch or (GPU_BATCH if self.device == "cuda" else 1)
        self.identity = model_identity(base, adapter, gguf if self.backend == "gguf" else None)
        self.cache = s.outputs / "cache" / "generations"
        self._model = self._tok = self._llm = None

    @property
    def backend_key(self) -> str:
        """What the cache key records about how answers were made."""
        if self.backend == "gguf":
            return f"llama.cpp:{self.gguf.name if self.gguf else '?'}"
        return f"hf:{self.device}:{self.torch_dtype_name()}"

    def torch_dtype_name(self) -> str:
        if self.device != "cuda":
            return "float32"
        return self.dtype or ("bfloat16" if _bf16() else "float16")

    def _max_new(self, item: dict) -> int:
        return min(item["max_tokens"], self.cap or item["max_tokens"])

    def _path(self, item: dict, batch: list[str] | None = None) -> Path:
        return self.cache / f"{cache_key(self.identity, item, self.seed, self.backend_key, batch)}.json"

    def __call__(self, item: dict[str, Any]) -> dict[str, Any]:
        return self.generate_many([item])[0]

    def generate_many(self, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Answers in the items' order; cached ones are read, the rest generated in batches of equal settings."""
        out: dict[int, dict[str, Any]] = {}
        groups: dict[tuple, list[int]] = {}
        for i, item in enumerate(items):
            groups.setdefault(_settings(item), []).append(i)
        for idx in groups.values():
            for start in range(0, len(idx), self.batch if self.backend == "hf" else 1):
                chunk = idx[start : start + (self.batch if self.backend == "hf" else 1)]
                prompts = [items[i]["prompt"] for i in chunk]
                paths = [self._path(items[i], prompts) for i in chunk]
                if all(p.is_file() for p in paths):
                    for i, p in zip(chunk, paths, strict=True):
                        out[i] = {**json.loads(p.read_text()), "cached": True}
                    continue
                texts = self._generate([items[i] for i in chunk])
                for i, p, text in zip(chunk, paths, texts, strict=True):
                    result = {
                        "text": text,
                        "model": self.identity,
                        "backend": self.backend_key,
                        "settings": {k: items[i][k] for k in ("temperature", "top_p", "max_tokens")},
                        "seed": self.seed,
                        "batch": len(chunk),
                    }
                    atomic.write_json(p, result)
                    out[i] = {**result, "cached": False}
        return [out[i] for i in range(len(items))]

    def _generate(self, items: list[dict[str, Any]]) -> list[str]:
        return [self._llama(items[0])] if self.backend == "gguf" else self._hf(items)

    def _load_hf(self):
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        tok = AutoTokenizer.from_pretrained(self.adapter or self.base)
        tok.padding_side = "left"  # generation continues every row from its own last token
        if tok.pad_token_id is None:
            tok.pad_token = tok.eos_token
        dtype = getattr(torch, self.torch_dtype_name())
        model = AutoModelForCausalLM.from_pretrained(self.base, dtype=dtype)
        if self.adapter:
            from peft import PeftModel

            model = PeftModel.from_pretrained(model, self.adapter)
        self._tok, self._model = tok, model.to(self.device).eval()

    def _hf(self, items: list[dict[str, Any]]) -> list[str]:
        import torch

        if self._model is None:
            self._load_hf()
        tok, model, item = self._tok, self._model, items[0]
        texts = [
            tok.apply_chat_template(
                [{"role": "user", "content": i["prompt"]}], add_generation_prompt=True, tokenize=False
            )
            for i in items
        ]
        enc = tok(texts, return_tensors="pt", padding=True, add_special_tokens=False).to(self.device)
        kwargs: dict[str, Any] = {"max_new_tokens": self._max_new(item), "pad_token_id": tok.pad_token_id}
        if item["temperature"] > 0:
            kwargs.update(do_sample=True, temperature=item["temperature"], top_k=0)
            if item["top_p"]:
                kwargs["top_p"] = item["top_p"]
        else:
            kwargs["do_sample"] = False
        torch.manual_seed(self.seed)
        with torch.no_grad():
            out = model.generate(**enc, **kwargs)
        start = enc["input_ids"].shape[1]
        return [tok.decode(row[start:], skip_special_tokens=True).strip() for row in out]

    def _llama(self, item: dict[str, Any]) -> str:
        if self._llm is None:
            from llama_cpp import Llama

            self._llm = Llama(model_path=str(self.gguf), n_ctx=4096, seed=self.seed, verbose=False)
        llm = self._llm
        import llama_cpp
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        eos = llm.token_eos()
        special = {
            k: llm.detokenize([t], special=True).decode(errors="ignore")
            for k, t in (("eos", eos), ("bos", llm.token_bos()))
        }
        fmt = Jinja2ChatFormatter(
            llm.metadata.get("tokenizer.chat_template") or "", eos_token=special["eos"], bos_token=special["bos"]
        )
        prompt = fmt(messages=[{"role": "user", "content": item["prompt"]}]).prompt
        tokens = llm.tokenize(prompt.encode(), add_bos=False, special=True)
        llm.set_seed(self.seed)
        temp = item["temperature"]
        generated: list[int] = []
        for t in llm.generate(
            tokens, temp=temp, top_p=item["top_p"] or 1.0, top_k=0 if temp > 0 else 1, min_p=0.0,
            typical_p=1.0, repeat_penalty=1.0, reset=True,
        ):  # fmt: skip
            if t == eos or llama_cpp.llama_vocab_is_eog(llm._model.vocab, t):  # any end-of-generation token
                break
            generated.append(t)
            if len(generated) >= self._max_new(item):
                break
        return llm.detokenize(generated, special=False).decode(errors="replace").strip()

    def close(self) -> None:
        if self._llm is not None:
            self._llm.close()
            self._llm = None


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def _bf16() -> bool:
    import torch

    return torch.cuda.is_available() and torch.cuda.is_bf16_supported()


def resolve_backend(asked: str, gguf: Path | None) -> str:
    if asked not in ("auto", "hf", "gguf"):
        raise UserError(f"GEN_BACKEND must be auto, hf or gguf, not '{asked}'", Where(key="GEN_BACKEND"))
    if asked == "gguf" and gguf is None:
        raise UserError(
            "GEN_BACKEND=gguf but this model has no parity-checked GGUF", Where(key="GEN_BACKEND"), "make gguf first"
        )
    if asked != "auto":
        return asked
    return "hf" if _cuda() or gguf is None else "gguf"


def run_gguf(run: Path) -> Path | None:
    """The run's reference GGUF when `make gguf` passed its parity check and the file is still the one checked
    (the size the manifest records; a full hash would cost seconds per call), else None."""
    from core import manifest

    g = manifest.read(run).gguf
    if g is None or g.parity != "pass" or g.outtype not in g.files:
        return None
    info = g.files[g.outtype]
    path = Path(run) / g.path / info.file
    if not path.is_file() or (info.bytes is not None and path.stat().st_size != info.bytes):
        return None
    return path


def baseline_gguf(model: str, run_file: Path | None, s: Settings, log=print) -> Path | None:
    """The f16 GGUF the model a run is compared with generates through: where the run's own side is llama.cpp
    (GEN_BACKEND=gguf, or auto on a CPU box for a run with a parity-checked GGUF), the model's cached f16 GGUF when
    it converts and passes its parity check; None (transformers) otherwise."""
    from tools.export import base_gguf

    asked = s.gen_backend or "auto"
    if asked == "hf" or (asked == "auto" and (run_file is None or _cuda())):
        return None
    f16 = base_gguf.usable_f16(model, s.cache, log)
    return f16.path if f16 is not None else None


def for_run(
    run: Path,
    seed: int = 0,
    max_new_tokens: int | None = None,
    baseline: bool = False,
    baseline_path: str | None = None,
    *,
    s: Settings,
) -> Generator:
    """The run's model (base + its adapter, or its GGUF on a CPU box), or with baseline=True its base model (its
    cached f16 GGUF where the run's side is its GGUF), in the recipe's dtype: what make judge compares."""
    import yaml

    from core import manifest, rundir

    m = manifest.read(run)
    config = yaml.safe_load((Path(run) / "config.yaml").read_text()) if (Path(run) / "config.yaml").is_file() else {}
    # the recipe's dtype on a GPU, as lm-eval's HF backend gets it (eval/lmeval.py hf_dtype); float32 on CPU
    dtype = ("bfloat16" if config.get("bf16") in (True, "auto") and _bf16() else "float16") if _cuda() else None
    base = m.train.base_model.path
    if baseline:  # the run's base model, or another model to compare with (eval/chain.py: a chain's root)
        model = baseline_path or base
        gguf = baseline_gguf(model, run_gguf(run), s)
        return Generator(model, None, seed, max_new_tokens, gguf=gguf, dtype=dtype, s=s)
    return Generator(base, rundir.final_adapter(run), seed, max_new_tokens, gguf=run_gguf(run), dtype=dtype, s=s)
