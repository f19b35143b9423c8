"""The offline preflight of a recipe or any axolotl config, every check at once (like torchtune's `tune validate`):
the recipe and what was derived for it, the model's facts (fetched into the HF cache when the Hub can be reached),
the kind of training, numbers that cannot work, axolotl's schema, the datasets, the end of turn being trained,
LoRA targets against the real architecture, sequence lengths against the data, llama.cpp's support for the
architecture, the disk, and (on a CUDA machine) the GPU kernels the config asks for. `make train` runs the same
checks first."""

from __future__ import annotations

from core import settings
from core.errors import UserError
from launch.preflight.datasets import check_datasets
from launch.preflight.disk import check_disk
from launch.preflight.end_of_turn import check_end_of_turn
from launch.preflight.findings import Finding
from launch.preflight.grpo import check_grpo
from launch.preflight.kernels import check_kernels
from launch.preflight.lengths import check_lengths
from launch.preflight.lora import check_lora_targets
from launch.preflight.model import check_gguf_support, check_kind, check_meta, ensure_facts
from launch.preflight.numbers import check_numbers
from launch.preflight.preference import check_preference
from launch.preflight.schema import check_schema
from launch.preflight.tracking import check_tracking
from launch.recipe.registry import Recipe, load_recipe
from launch.recipe.resolve import Resolved, resolve

CHECKS = (
    check_datasets,
    check_end_of_turn,
    check_lora_targets,
    check_lengths,
    check_preference,
    check_grpo,
    check_gguf_support,
    check_tracking,
    check_disk,
    check_kernels,
)


def target_device(recipe: Recipe, device: str | None = None) -> str:
    """The device the recipe is checked for: DEVICE= when given, else what the recipe is meant for (a GPU recipe,
    or a config that does not say, is checked as the GPU run it will be, even on a laptop)."""
    gpu = recipe.meta.gpu
    return device or settings.load().device or ("cpu" if gpu is not None and gpu.count == 0 else "gpu")


def run_checks(
    name: str, args: str | dict | None = None, device: str | None = None
) -> tuple[Resolved | None, list[Finding]]:
    try:
        recipe = load_recipe(name)
        device = target_device(recipe, device)
        r = resolve(recipe, device=device, args=args)
    except UserError as exc:
        return None, [Finding("error", "recipe", exc.message, exc.where, exc.hint)]
    found = ensure_facts(r)
    if found[0].level == "ok" and "fetched" in found[0].message:
        r = resolve(recipe, device=device, args=args)  # derive again from the fetched files
    derived = f"; derived: {'; '.join(r.derived)}" if r.derived else ""
    findings = [Finding("ok", "recipe", f"{recipe.name}: {r.meta.description} (checked for {device}){derived}"), *found]
    findings += check_meta(r) + check_kind(r) + check_numbers(r) + check_schema(r)
    for check in CHECKS:
        findings += check(r)
    return r, findings


def errors_of(findings: list[Finding]) -> list[Finding]:
    return [f for f in findings if f.level == "error"]
