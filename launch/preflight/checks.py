"""The offline preflight of a recipe, every check at once (like torchtune's `tune validate`): the recipe and its
meta, axolotl's schema, dataset files, the end of turn being trained, LoRA targets against the real
architecture, sequence lengths against the data, and the disk. `make train` runs the same checks first."""

from __future__ import annotations

from core import settings
from core.errors import UserError
from launch.preflight.datasets import check_datasets
from launch.preflight.disk import check_disk
from launch.preflight.end_of_turn import check_end_of_turn
from launch.preflight.findings import Finding
from launch.preflight.lengths import check_lengths
from launch.preflight.lora import check_lora_targets
from launch.preflight.schema import check_schema
from launch.recipe.registry import Recipe, load_recipe
from launch.recipe.resolve import Resolved, resolve

CHECKS = (check_datasets, check_end_of_turn, check_lora_targets, check_lengths, check_disk)


def target_device(recipe: Recipe, device: str | None = None) -> str:
    """The device the recipe is checked for: DEVICE= when given, else what the recipe is meant for (a GPU recipe
    is checked as the GPU run it will be, even on a laptop)."""
    return device or settings.load().device or ("gpu" if recipe.meta.gpu.count > 0 else "cpu")


def run_checks(name: str, args: str | None = None, device: str | None = None) -> tuple[Resolved | None, list[Finding]]:
    try:
        recipe = load_recipe(name)
        device = target_device(recipe, device)
        r = resolve(recipe, device=device, args=args)
    except UserError as exc:
        return None, [Finding("error", "recipe", exc.message, exc.where, exc.hint)]
    findings = [Finding("ok", "recipe", f"{recipe.name}: {recipe.meta.description} (checked for {device})")]
    findings += check_schema(r)
    for check in CHECKS:
        findings += check(r)
    return r, findings


def errors_of(findings: list[Finding]) -> list[Finding]:
    return [f for f in findings if f.level == "error"]
