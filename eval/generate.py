"""Responses for judging: a prompt suite sampled from a model (merged, or base + adapter) with given
settings, cached per (model identity, prompt, settings, seed) so a crash or a re-run costs nothing twice."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from core import atomic
from core.errors import UserError, Where
from core.paths import outputs_dir
from data.validate import read_jsonl

SUITE_FIELDS = ("suite", "config", "prompt", "temperature", "max_tokens")


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


def model_identity(base: str, adapter: Path | None) -> str:
    """A stable id for what generates: hashes of the weights files (or the base path for hub models)."""
    h = hashlib.sha256(base.encode())
    for folder in [Path(base), adapter] if adapter else [Path(base)]:
        if folder and folder.is_dir():
            for f in sorted(folder.glob("*.safetensors")):
                h.update(f.name.encode() + str(f.stat().st_size).encode() + f.read_bytes()[: 1 << 20])
    return h.hexdigest()[:16]


def cache_key(identity: str, item: dict, seed: int) -> str:
    spec = json.dumps([identity, item["prompt"], item["temperature"], item["top_p"], item["max_tokens"], seed])
    return hashlib.sha256(spec.encode()).hexdigest()


class Generator:
    """Loads the model once; generates with the chat template, sampling as the item says."""

    def __init__(self, base: str, adapter: Path | None = None, seed: int = 0, max_new_tokens: int | None = None):
        self.base, self.adapter, self.seed, self.cap = base, adapter, seed, max_new_tokens
        self.identity = model_identity(base, adapter)
        self.cache = outputs_dir() / "cache" / "generations"
        self._model = self._tok = None

    def _load(self):
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self._tok = AutoTokenizer.from_pretrained(self.adapter or self.base)
        model = AutoModelForCausalLM.from_pretrained(self.base, dtype=torch.float32)
        if self.adapter:
            from peft import PeftModel

            model = PeftModel.from_pretrained(model, self.adapter)
        self._model = model.eval()

    def __call__(self, item: dict[str, Any]) -> dict[str, Any]:
        path = self.cache / f"{cache_key(self.identity, item, self.seed)}.json"
        if path.is_file():
            return {**json.loads(path.read_text()), "cached": True}
        import torch

        if self._model is None:
            self._load()
        tok, model = self._tok, self._model
        enc = tok.apply_chat_template(
            [{"role": "user", "content": item["prompt"]}],
            add_generation_prompt=True,
            return_tensors="pt",
            return_dict=True,
        )
        torch.manual_seed(self.seed)
        kwargs: dict[str, Any] = {
            "max_new_tokens": min(item["max_tokens"], self.cap or item["max_tokens"]),
            "pad_token_id": tok.pad_token_id or tok.eos_token_id,
        }
        if item["temperature"] > 0:
            kwargs.update(do_sample=True, temperature=item["temperature"], top_k=0)
            if item["top_p"]:
                kwargs["top_p"] = item["top_p"]
        else:
            kwargs["do_sample"] = False
        with torch.no_grad():
            out = model.generate(**enc, **kwargs)
        text = tok.decode(out[0][enc["input_ids"].shape[1] :], skip_special_tokens=True).strip()
        result = {
            "text": text,
            "model": self.identity,
            "settings": {k: item[k] for k in ("temperature", "top_p", "max_tokens")},
            "seed": self.seed,
        }
        atomic.write_json(path, result)
        return {**result, "cached": False}
