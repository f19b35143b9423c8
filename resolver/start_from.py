"""The run a recipe starts from (meta.start_from: another recipe's LATEST completed run, or FROM_RUN=), read
through that run's manifest, never a guessed checkpoint: which weights become this run's base model (its
verified merge, or a full fine-tune's final folder) and, with `prefs: true`, which preference pairs it trains on.

Why merge rather than load the adapter: axolotl (0.19 to 0.21) ignores lora_model_dir for rl: dpo/ipo/kto (a fresh
LoRA is made), and with LoRA the reference model is the adapter-disabled policy. On the merged SFT model
both come out right: a new adapter on top of the SFT weights, and the SFT model itself as the reference,
with no second copy in memory.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core import manifest, rundir
from core.errors import UserError, Where
from core.manifest import Manifest
from resolver.meta import StartFromSpec


@dataclass(frozen=True)
class StartRun:
    run: Path
    recipe: str
    manifest: Manifest
    hub_model: str  # the model that run itself started from (a hub id): facts, cards and the chain's "base"
    weights: Path | None  # the folder this run loads as base_model; None until the adapter is merged
    needs_merge: bool
    prefs: Path | None = None
    prefs_val: Path | None = None

    @property
    def unmerged_base(self) -> str:
        """The start run's own base model: same architecture and tokenizer as the merge, for checks before it."""
        base = self.manifest.train.base_model
        return base.path if base else self.hub_model

    @property
    def checkpoint_sha256(self) -> str | None:
        final = self.manifest.train.final_checkpoint
        return final.sha256 if final else None


def locate(
    spec: StartFromSpec | None,
    from_run: str | None,
    outputs: Path,
    where: Where,
    recipe_model: str | None,
    required: bool = True,
) -> StartRun | None:
    """The start run for this recipe (FROM_RUN= wins over meta.start_from.recipe), checked complete. Not
    `required` (make check, make show): a start recipe with no run yet gives None, and the recipe is checked with
    its own base model and datasets; training always requires it."""
    if not from_run and spec is None:
        return None
    where = Where(key="FROM_RUN") if from_run else where
    try:
        run = rundir.resolve(outputs, from_run, None if from_run else spec.recipe)
    except UserError as exc:
        if not required and not from_run:
            return None
        raise UserError(
            f"this recipe starts from {'FROM_RUN=' + from_run if from_run else 'the latest run of ' + spec.recipe}, "
            f"which is not usable: {exc.message}",
            where,
            f"train it first (make train RECIPE={spec.recipe if spec else '<sft recipe>'}) or set FROM_RUN=<run dir>",
        ) from None
    m = manifest.read(run)
    final = m.train.final_checkpoint
    if m.train.status != "completed" or final is None:
        raise UserError(
            f"the start run {run} did not complete (status {m.train.status})",
            where,
            "finish or resume that run first, or set FROM_RUN= to a completed one",
        )
    hub = m.train.base_model.name if m.train.base_model else m.recipe_name
    if recipe_model and not Path(recipe_model).exists() and recipe_model != hub:
        raise UserError(
            f"the start run {run.name} ({m.recipe_name}) trained {hub}, but this recipe's base_model is {recipe_model}",
            where,
            f"set base_model: {hub} in the recipe, or start from a run of {recipe_model}",
        )
    needs_merge = final.file == "adapter_model.safetensors"
    weights: Path | None = None
    if not needs_merge:
        weights = rundir.final_adapter(run)
    elif m.merge is not None and (run / m.merge.path / "config.json").is_file():
        weights, needs_merge = run / m.merge.path, False
    prefs = prefs_val = None
    if spec is not None and spec.prefs:
        if m.prefs is None:
            raise UserError(
                f"this recipe trains on the start run's preference pairs, and {run} has none yet",
                where,
                f"make prefs RUN={run} JUDGES=<judges> (or point datasets: at your own pairs and set prefs: false)",
            )
        prefs = run / m.prefs.path
        prefs_val = run / m.prefs.val_path if m.prefs.val_path else None
    return StartRun(run, m.recipe_name, m, hub, weights, needs_merge, prefs, prefs_val)


def apply(config: dict[str, Any], start: StartRun, notes: list[str]) -> None:
    """The start run's weights (or, before its merge, its own base) as base_model; its pairs as the datasets."""
    if start.weights is not None:
        config["base_model"] = str(start.weights)
        notes.append(f"base_model is {start.weights} (run {start.run.name} of {start.recipe})")
    else:
        config["base_model"] = start.unmerged_base
        notes.append(
            f"base_model will be run {start.run.name} of {start.recipe} merged (make train merges it first); "
            f"checked here with its base {start.unmerged_base}"
        )
    config.pop("lora_model_dir", None)  # the start run's adapter is inside the merged base, not loaded again
    if start.prefs is None:
        return
    for key, path in (("datasets", start.prefs), ("test_datasets", start.prefs_val)):
        entries = config.get(key) or []
        if path is None:
            config.pop(key, None)
            continue
        if not entries:
            continue
        config[key] = [{**entries[0], "path": str(path)}]
    notes.append(f"datasets are run {start.run.name}'s preference pairs: {start.prefs}")
