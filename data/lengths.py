"""axolotl's own prompt strategy for a recipe's dataset entry, offline (the recipe's tokenizer and template),
so token counts in data/stats.py never come from a different tokenizer."""
from __future__ import annotations

from pathlib import Path
from typing import Any



def offline_model_config(base_model: str) -> str | None:
    """A folder with config.json for a hub model, written from launch/hub_models.yaml (axolotl's tokenizer
    loader reads the model config too, which would otherwise need the hub)."""
    from transformers import AutoConfig

    from launch.architecture import facts_for
    from launch.paths import cache_dir

    facts = facts_for(base_model)
    if facts is None or facts.get("local"):
        return None
    folder = cache_dir() / "configs" / base_model.replace("/", "--")
    if not (folder / "config.json").is_file():
        raw = dict(facts["config"])
        config = AutoConfig.for_model(raw.pop("model_type"), **raw)
        config.architectures = [facts["architecture"]]
        config.save_pretrained(folder)
    return str(folder)


def strategy_for(config: dict[str, Any], ds: dict[str, Any]):
    """axolotl's prompt tokenizing strategy for one dataset entry of a resolved config."""
    from axolotl.loaders import load_tokenizer
    from axolotl.prompt_strategies import load as load_by_name
    from axolotl.prompt_strategies.user_defined import UserDefinedDatasetConfig
    from axolotl.prompt_strategies.user_defined import load as load_user_defined
    from axolotl.utils.dict import DictDefault

    cfg = DictDefault({**config, "tokenizer_config": config.get("tokenizer_config") or config["base_model"],
                       "sequence_len": 1 << 20})  # measure, never truncate
    if not Path(config["base_model"]).is_dir() and not config.get("base_model_config"):
        cfg["base_model_config"] = offline_model_config(config["base_model"])
    tokenizer = load_tokenizer(cfg)
    kind = ds.get("type")
    if isinstance(kind, dict):
        return tokenizer, load_user_defined(tokenizer, cfg, UserDefinedDatasetConfig(**kind))
    return tokenizer, load_by_name(kind, tokenizer, cfg, DictDefault(ds))
