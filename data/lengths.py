"""Token lengths of a dataset exactly as axolotl will tokenize it (its own prompt strategy,
the recipe's tokenizer and template), so length figures never come from a different tokenizer."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from data.validate import check_messages, check_prompt_completion, read_jsonl


def strategy_for(config: dict[str, Any], ds: dict[str, Any]):
    """axolotl's prompt tokenizing strategy for one dataset entry of a resolved config."""
    from axolotl.loaders import load_tokenizer
    from axolotl.prompt_strategies import load as load_by_name
    from axolotl.prompt_strategies.user_defined import UserDefinedDatasetConfig
    from axolotl.prompt_strategies.user_defined import load as load_user_defined
    from axolotl.utils.dict import DictDefault

    cfg = DictDefault({**config, "tokenizer_config": config.get("tokenizer_config") or config["base_model"],
                       "sequence_len": 1 << 20})  # measure, never truncate
    tokenizer = load_tokenizer(cfg)
    kind = ds.get("type")
    if isinstance(kind, dict):
        return tokenizer, load_user_defined(tokenizer, cfg, UserDefinedDatasetConfig(**kind))
    return tokenizer, load_by_name(kind, tokenizer, cfg, DictDefault(ds))


def token_lengths(config: dict[str, Any], ds: dict[str, Any], path: Path, fmt: str, **fields: str) -> list[int]:
    """Token count of every valid record (invalid ones are the validator's to report, not ours to crash on)."""
    _, strategy = strategy_for(config, ds)
    check = check_messages if fmt == "messages" else check_prompt_completion
    lengths = []
    for _, record, err in read_jsonl(path):
        if err is None and check(record, **fields) is None:
            lengths.append(len(strategy.tokenize_prompt(record)["input_ids"]))
    return lengths
