"""The offline preflight of a recipe or any axolotl config, every check at once (like torchtune's `tune validate`):
the recipe and what was derived for it, the model's facts (fetched into the HF cache when the Hub can be reached),
the kind of training, numbers that cannot work, axolotl's schema, the datasets, the end of turn being trained,
LoRA targets against the real architecture, sequence lengths against the data, llama.cpp's support for the
architecture, the disk, and (on a CUDA machine) the GPU kernels the config asks for. `make train` runs the same
checks first.

Two phases. The cheap checks read the recipe, the facts files, the schema's key names (cached) and the data; when
one of them is an error the preflight stops there, in about a second. Only then come the heavy ones, which import
what they need (axolotl's validate_config, the tokenizer through axolotl, the module tree on torch's meta device,
the lengths, the disk the run needs); what goes through axolotl is kept per input (launch/preflight/kept.py)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from core import stack
from core.errors import UserError
from core.settings import Settings
from launch.preflight import kept
from launch.preflight.datasets import check_datasets
from launch.preflight.disk import check_disk
from launch.preflight.end_of_turn import check_end_of_turn
from launch.preflight.findings import Finding
from launch.preflight.grpo import check_grpo, check_grpo_lengths
from launch.preflight.kernels import check_kernels
from launch.preflight.lengths import check_lengths
from launch.preflight.lora import check_lora_targets
from launch.preflight.model import check_buildable, check_gguf_support, check_kind, check_meta, ensure_facts
from launch.preflight.numbers import check_numbers
from launch.preflight.preference import check_preference_config, check_preference_data
from launch.preflight.schema import check_keys, check_validate
from launch.preflight.tracking import check_tracking
from resolver.registry import Recipe, load_recipe
from resolver.resolve import Resolved, resolve

HEAVY = "axolotl's validate_config, the tokenizer, the module tree, the lengths and the disk"
THROUGH_AXOLOTL = "axolotl's validate_config, end of turn and lengths"


@dataclass
class Preflight:
    resolved: Resolved | None
    findings: list[Finding] = field(default_factory=list)
    stopped: bool = False  # a cheap check found an error: the heavy ones did not run
    reused: Path | None = None  # the heavy checks' findings were read back from this file (inputs unchanged)


def check_stack() -> list[Finding]:
    """The versions every later check runs against (read from metadata: nothing imported), inside the supported
    range (core/stack.py)."""
    found = [Finding("error", "stack", p, hint="make setup installs the lock's versions") for p in stack.problems()]
    return found or [Finding("ok", "stack", f"checked against {stack.versions()}")]


def target_device(recipe: Recipe, s: Settings, device: str | None = None) -> str:
    """The device the recipe is checked for: DEVICE= when given, else what the recipe is meant for (a GPU recipe,
    or a config that does not say, is checked as the GPU run it will be, even on a laptop)."""
    gpu = recipe.meta.gpu
    return device or s.device or ("cpu" if gpu is not None and gpu.count == 0 else "gpu")


def preflight(
    name: str,
    s: Settings,
    args: str | dict | None = None,
    device: str | None = None,
    force: bool = False,
    need_start: bool | None = None,
    before_heavy: Callable[[], None] | None = None,
) -> Preflight:
    """Every check of the recipe; force=True runs the heavy ones even when their inputs have not changed;
    need_start=True (make train) refuses a start_from recipe that has no completed run yet, as an error;
    before_heavy (make train's own cheap refusals, raising UserError) runs once the cheap checks passed."""
    try:
        recipe = load_recipe(name)
        device = target_device(recipe, s, device)
        r = resolve(recipe, s, device=device, args=args, need_start=need_start)
    except UserError as exc:
        return Preflight(None, [Finding("error", "recipe", exc.message, exc.where, exc.hint)])
    model = ensure_facts(r)
    if model[0].level == "ok" and "fetched" in model[0].message:
        r = resolve(recipe, s, device=device, args=args, need_start=need_start)  # derive again from the fetched files
    derived = f"; derived: {'; '.join(r.derived)}" if r.derived else ""
    head = [Finding("ok", "recipe", f"{recipe.name}: {r.meta.description} (checked for {device}){derived}")]
    meta, config = check_meta(r), check_kind(r) + check_numbers(r)
    keys, data, prefs = check_keys(r), check_datasets(r), check_preference_config(r)
    tail = check_grpo(r) + check_gguf_support(r) + check_tracking(r)
    head += check_stack()
    cheap = [*head, *model, *meta, *config, *keys, *data, *prefs, *tail]
    if errors_of(cheap):
        return Preflight(r, cheap, stopped=True)
    if before_heavy is not None:
        before_heavy()
    model = check_buildable(r) or model  # transformers cannot build it: that error replaces the facts line
    meta += check_meta(r, counted=True)

    def through_axolotl() -> kept.Results:
        return {
            "schema": check_validate(r, keys),
            "end of turn": check_end_of_turn(r),
            "lengths": check_lengths(r),
            "preference": check_preference_data(r),
        }

    found, reused = kept.findings(r, through_axolotl, force)
    schema, prefs = keys + found["schema"], prefs + found["preference"]
    heavy = found["end of turn"] + check_lora_targets(r) + found["lengths"] + check_grpo_lengths(r)
    machine = check_disk(r) + check_kernels(r)
    done = [*head, *model, *meta, *config, *schema, *data, *heavy, *prefs, *tail, *machine]
    return Preflight(r, done, reused=reused)


def run_checks(
    name: str,
    s: Settings,
    args: str | dict | None = None,
    device: str | None = None,
    need_start: bool | None = None,
    before_heavy: Callable[[], None] | None = None,
) -> tuple[Resolved | None, list[Finding]]:
    done = preflight(name, s, args, device, need_start=need_start, before_heavy=before_heavy)
    return done.resolved, done.findings


def errors_of(findings: list[Finding]) -> list[Finding]:
    return [f for f in findings if f.level == "error"]
