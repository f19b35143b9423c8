"""axolotl's own prompt strategy for a config's dataset entry, so token counts never come from a different
tokenizer or template than training uses. The config must name a local tokenizer (`tokenizer_config`) and, for a
hub model, a local `base_model_config` folder (resolver/architecture.py's tokenizer_config builds both)."""

from __future__ import annotations

from typing import Any


def normalized(ds: dict[str, Any]) -> dict[str, Any]:
    """A dataset entry as axolotl's schema normalizes it (legacy message_field_role/content become
    message_property_mappings, a chat_template entry gets its template), which is what its strategies read."""
    from axolotl.utils.schemas.datasets import SFTDataset

    try:
        return SFTDataset.model_validate(ds).model_dump(exclude_none=True)
    except Exception:  # noqa: BLE001 - the schema check reports an entry it refuses
        return ds


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
    ds = normalized(ds)
    kind = ds.get("type")
    if isinstance(kind, dict):
        return tokenizer, load_user_defined(tokenizer, cfg, UserDefinedDatasetConfig(**kind))
    return tokenizer, load_by_name(kind, tokenizer, cfg, DictDefault(ds))
