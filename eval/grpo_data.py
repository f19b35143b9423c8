"""The prompt sets a GRPO run trains on, as axolotl dataset transforms (a dataset entry's `type`):

  type: eval.grpo_suite    an eval suite (eval/suites/*.jsonl): only its training part, the prompts the held-out
                           split of eval/prefs_split.py does not keep back, so `make judge` of the run scores it on
                           the held-out part (prefs_split.sources reads which part a GRPO run trained on);
  type: eval.grpo_prompts  a prompts file: `prompt` (a string or the conversation's turns up to the user's) or
                           `messages` (the same turns); its other fields reach the reward functions as columns.

Both give each row `prompt` as chat turns (TRL applies the model's chat template), `prompt_key` and the columns the
rewards of eval/rewards.py read: `eos_token_id` (the tokenizer's end of turn) and `max_completion_length` (the
recipe's trl.max_completion_length). data/grpo_kinds.py validates the records and lists these COLUMNS for make check.

axolotl's transform loader resolves only `module.function` (one dot, prompt_strategies/base.py), so these are
reached as attributes of the eval package (eval/__init__.py), not by this module's path.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from core import manifest
from core.errors import UserError, Where
from core.hashing import sha256_file
from data.entries import dataset_file
from eval import chain
from eval.prefs_split import Source, prompt_key, split

COLUMNS = ("prompt", "prompt_key", "eos_token_id", "max_completion_length")


def _turns(value: Any) -> list[dict[str, str]]:
    return [{"role": "user", "content": value}] if isinstance(value, str) else list(value)


def _last_user(turns: list[dict]) -> str:
    users = [m.get("content") for m in turns if isinstance(m, dict) and m.get("role") == "user"]
    return str(users[-1]) if users else ""


def _columns(cfg: Any, tokenizer: Any) -> dict[str, Any]:
    trl = (cfg.get("trl") if hasattr(cfg, "get") else None) or {}
    return {
        "eos_token_id": int(tokenizer.eos_token_id) if tokenizer is not None else -1,
        "max_completion_length": int(trl.get("max_completion_length") or 256),
    }


def suite_prompts(path: Path) -> list[str]:
    """The prompts of a suite file, in order (data/grpo_kinds.py has refused a line without one)."""
    out = []
    for raw in path.read_text(encoding="utf-8").splitlines():
        if raw.strip():
            out.append(json.loads(raw)["prompt"])
    return out


def training_keys(path: Path) -> frozenset[str]:
    """prompt_key of each prompt of the suite's training part (the held-out split's complement)."""
    train, _ = split([{"prompt": p} for p in suite_prompts(path)])
    return frozenset(prompt_key(i["prompt"]) for i in train)


def grpo_suite(cfg: Any, dataset_idx: int = 0, **kwargs: Any):
    """The training part of the suite this dataset entry names; the split is over the whole file, so it is
    computed here once, not per batch (the map runs on shards)."""
    keep = training_keys(dataset_file(dict(cfg["datasets"][dataset_idx])))

    def transform(batch: dict[str, list], tokenizer: Any = None) -> dict[str, list]:
        prompts = [p for p in batch["prompt"] if prompt_key(p) in keep]
        extra = _columns(cfg, tokenizer)
        return {
            "prompt": [_turns(p) for p in prompts],
            "prompt_key": [prompt_key(p) for p in prompts],
            **{k: [v] * len(prompts) for k, v in extra.items()},
        }

    return transform, {"batched": True, "remove_columns": "__all__"}


def grpo_prompts(cfg: Any, dataset_idx: int = 0, **kwargs: Any):
    """A prompts file, row for row."""

    def transform(row: dict[str, Any], tokenizer: Any = None) -> dict[str, Any]:
        turns = _turns(row.get("prompt") if row.get("prompt") is not None else row["messages"])
        return {"prompt": turns, "prompt_key": prompt_key(_last_user(turns)), **_columns(cfg, tokenizer)}

    return transform, {"remove_columns": ["messages"]}


def file_prompts(path: Path) -> list[str]:
    """The user request of every row of a prompts file (what a run trained on it has seen)."""
    out = []
    for raw in path.read_text(encoding="utf-8").splitlines():
        try:
            row = json.loads(raw) if raw.strip() else None
        except json.JSONDecodeError:
            continue  # make check names bad lines; a user's transform may read other files
        if not isinstance(row, dict):
            continue
        value = row.get("prompt") if row.get("prompt") is not None else row.get("messages")
        if isinstance(value, str | list):
            out.append(value if isinstance(value, str) else _last_user(value))
    return out


def sources(run: Path) -> list[Source]:
    """The prompt sets the GRPO runs of `run`'s chain trained on (each one's config.yaml datasets), for judging
    on the prompts they did not see. A set that is gone, or changed since (its sha256 in the manifest), is an
    error: which prompts were trained on could no longer be told."""
    out = []
    for link in chain.links(run):
        pref = link.manifest.train.preference
        if pref is None or pref.rl != "grpo":
            continue
        config = yaml.safe_load((link.run / link.manifest.train.config).read_text(encoding="utf-8")) or {}
        recorded = {d.path: d.sha256 for d in link.manifest.train.datasets}
        for ds in config.get("datasets") or []:
            path, where = dataset_file(ds), Where(link.run / manifest.MANIFEST, key="train.datasets")
            if not path.is_file() or (recorded.get(ds["path"]) and sha256_file(path) != recorded[ds["path"]]):
                raise UserError(
                    f"run {link.label} trained on the prompts {ds['path']}, which are "
                    + ("gone" if not path.is_file() else "changed since")
                    + ": which prompts it saw (and so which are held out) cannot be told",
                    where,
                    "restore that file as it was when the run trained",
                )
            if ds.get("type") == "eval.grpo_suite":
                keys = training_keys(path)
            else:  # a prompts file (or a transform of the user's): every prompt in it was trained on
                keys = frozenset(prompt_key(p) for p in file_prompts(path))
            out.append(Source(f"{link.label} (GRPO)", path, keys))
    return out
