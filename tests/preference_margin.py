"""Preference margins of a finished LoRA preference run, measured on its own training pairs, each rendered by
axolotl's strategy (data/preference_render.py), under the policy (adapter on) and the model it started from (the
same model, adapter disabled):
  DPO: beta * (chosen log-ratio - rejected log-ratio), policy over reference; 0 for every pair before training.
  ORPO: the log odds ratio of chosen over rejected (mean per-token log-probabilities, as TRL computes it), after
  and before training."""

from __future__ import annotations

from pathlib import Path

import torch
import yaml

from core import manifest, rundir
from data import sources
from data.preference_render import transform


def _logp(model, prompt_ids: list[int], side_ids: list[int]) -> float:
    ids = torch.tensor([prompt_ids + side_ids])
    with torch.no_grad():
        logits = model(input_ids=ids).logits[0, :-1].float()
    targets = ids[0, 1:]
    logps = torch.log_softmax(logits, -1).gather(1, targets[:, None])[:, 0]
    return logps[len(prompt_ids) - 1 :].sum().item()


def _pairs(run: Path):
    """(model with the run's adapter, tokenizer, [(prompt ids, chosen ids, rejected ids)]) of the training pairs."""
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    m = manifest.read(run)
    config = yaml.safe_load((run / "config.yaml").read_text())
    adapter = rundir.final_adapter(run)
    tokenizer = AutoTokenizer.from_pretrained(adapter)
    base = AutoModelForCausalLM.from_pretrained(m.train.base_model.path, dtype=torch.float32)
    model = PeftModel.from_pretrained(base, adapter).eval()
    ds = config["datasets"][0]
    fn = transform(config, ds, tokenizer)
    pairs = []
    for row in sources.rows(ds):
        sample = fn(dict(row.record))
        sides = []
        for side in ("chosen", "rejected"):
            ids = tokenizer(sample[side], add_special_tokens=False)["input_ids"]
            if not ids or ids[-1] != tokenizer.eos_token_id:
                ids = [*ids, tokenizer.eos_token_id]  # as TRL appends it
            sides.append(ids)
        pairs.append((tokenizer(sample["prompt"], add_special_tokens=False)["input_ids"], *sides))
    return model, pairs


def training_margins(run: Path, beta: float = 0.1) -> list[float]:
    model, pairs = _pairs(run)
    margins = []
    for prompt, chosen, rejected in pairs:
        ratios = []
        for ids in (chosen, rejected):
            policy = _logp(model, prompt, ids)
            with model.disable_adapter():
                reference = _logp(model, prompt, ids)
            ratios.append(policy - reference)
        margins.append(beta * (ratios[0] - ratios[1]))
    return margins


def log_odds_ratios(run: Path) -> tuple[list[float], list[float]]:
    """ORPO's log odds ratio per training pair: (before training, after)."""

    def ratio(prompt: list[int], chosen: list[int], rejected: list[int]) -> float:
        def log_odds(ids: list[int]) -> float:
            mean = torch.tensor(_logp(model, prompt, ids) / len(ids))
            return (mean - torch.log1p(-torch.exp(mean))).item()

        return log_odds(chosen) - log_odds(rejected)

    model, pairs = _pairs(run)
    after = [ratio(*p) for p in pairs]
    with model.disable_adapter():
        before = [ratio(*p) for p in pairs]
    return before, after
