"""Preference records as axolotl will train them: each dataset entry's own strategy (prompt_strategies/dpo, orpo,
kto, loaded the way axolotl's utils/data/rl.py loads it) renders prompt, chosen and rejected (or completion) text
with the recipe's tokenizer and chat template; token counts are axolotl's (prompt + side, special tokens not
added); TRL then appends the eos to each side that does not end with it."""

from __future__ import annotations

from collections.abc import Iterable
from functools import partial
from inspect import signature
from typing import Any

from data.sources import Row


def transform(config: dict[str, Any], ds: dict[str, Any], tokenizer: Any):
    """axolotl's transform for this entry (its `type`, under the config's rl:), bound to the tokenizer."""
    from axolotl.prompt_strategies.dpo import load as load_dpo
    from axolotl.prompt_strategies.kto import load as load_kto
    from axolotl.prompt_strategies.orpo import load as load_orpo
    from axolotl.utils.dict import DictDefault

    cfg = DictDefault({**config, "datasets": [ds]})
    kind = ds.get("type")
    if not kind:
        return lambda record: dict(record)  # no type: the rows already hold prompt, chosen, rejected
    kind = "user_defined.default" if isinstance(kind, dict) else kind
    rl = str(config.get("rl"))
    loader = {"orpo": load_orpo, "kto": load_kto}.get(rl, load_dpo)
    fn = loader(kind, cfg, dataset_idx=0)
    if fn is None:
        raise ValueError(f"axolotl has no {rl} strategy '{kind}'")
    fn = fn[0] if isinstance(fn, tuple) else fn
    if "tokenizer" in signature(fn).parameters:
        fn = partial(fn, tokenizer=tokenizer)
    return fn


def sides(sample: dict[str, Any]) -> dict[str, str]:
    """The trained continuations of a rendered sample: chosen and rejected, or KTO's completion."""
    return {k: sample[k] for k in ("chosen", "rejected", "completion") if isinstance(sample.get(k), str)}


def render_rows(
    config: dict[str, Any], ds: dict[str, Any], tokenizer: Any, rows: Iterable[Row]
) -> list[dict[str, Any]]:
    """[{line, prompt, sides: {name: text}, tokens: {name: prompt + side tokens}}] for rows without a read error."""
    fn = transform(config, ds, tokenizer)
    out = []
    for row in rows:
        if row.error is not None:
            continue
        sample = fn(dict(row.record))
        prompt = sample.get("prompt") or ""
        n_prompt = len(tokenizer(prompt, add_special_tokens=False)["input_ids"])
        texts = sides(sample)
        tokens = {k: n_prompt + len(tokenizer(v, add_special_tokens=False)["input_ids"]) for k, v in texts.items()}
        out.append({"line": row.where, "prompt": prompt, "sides": texts, "tokens": tokens})
    return out
