"""axolotl's own prompt strategy for a config's dataset entry, so token counts never come from a different
tokenizer or template than training uses. The config must name a local tokenizer (`tokenizer_config`) and, for a
hub model, a local `base_model_config` folder (launch/recipe/architecture.py's tokenizer_config builds both)."""

from __future__ import annotations

from typing import Any


def strategy_for(config: dict[str, Any], ds: dict[str, Any]):
    """(tokenizer, axolotl's prompt tokenizing strategy) for one dataset entry of a resolved config."""
    from axolotl.loaders import load_tokenizer
    from axolotl.prompt_strategies import load as load_by_name
    from axolotl.prompt_strategies.user_defined import UserDefinedDatasetConfig
    from axolotl.prompt_strategies.user_defined import load as load_user_defined
    from axolotl.utils.dict import DictDefault

    cfg = DictDefault(
        {**config, "tokenizer_config": config.get("tokenizer_config") or config["base_model"], "sequence_len": 1 << 20}
    )  # measure, never truncate
    tokenizer = load_tokenizer(cfg)
    kind = ds.get("type")
    if isinstance(kind, dict):
        return tokenizer, load_user_defined(tokenizer, cfg, UserDefinedDatasetConfig(**kind))
    return tokenizer, load_by_name(kind, tokenizer, cfg, DictDefault(ds))
