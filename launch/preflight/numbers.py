"""Preflight: numbers that cannot work, each an error naming its key (axolotl would fail later, or train nothing)."""

from __future__ import annotations

from launch.preflight.findings import Finding
from resolver.resolve import Resolved

# key: (smallest allowed value, what it is)
MINIMUM = {
    "sequence_len": (1, "tokens per sample"),
    "micro_batch_size": (1, "samples per step and device"),
    "gradient_accumulation_steps": (1, "micro batches per optimizer step"),
    "lora_r": (1, "the LoRA rank"),
    "max_steps": (1, "optimizer steps"),
    "save_total_limit": (1, "checkpoints kept"),
}


def _number(value: object) -> float | None:
    """A number as axolotl reads it (YAML 1.1 leaves `3e-4` a string, which axolotl accepts); NaN when it is not."""
    if value is None:
        return None
    if isinstance(value, bool):
        return float("nan")
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return float("nan")


def check_numbers(r: Resolved) -> list[Finding]:
    cfg, out = r.config, []
    for key, (low, what) in MINIMUM.items():
        value = cfg.get(key)
        if value is None or key == "lora_r" and cfg.get("adapter") not in ("lora", "qlora"):
            continue
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            out.append(
                Finding(
                    "error",
                    "numbers",
                    f"{key} must be a whole number >= {low} ({what}), not {value!r}",
                    r.where(key),
                )
            )
    lr = _number(cfg.get("learning_rate"))
    if lr is not None and (lr != lr or lr <= 0):
        out.append(
            Finding("error", "numbers", f"learning_rate must be a number > 0, not {lr!r}", r.where("learning_rate"))
        )
    epochs = _number(cfg.get("num_epochs"))
    if not cfg.get("max_steps") and epochs is not None and (epochs != epochs or epochs <= 0):
        out.append(
            Finding(
                "error",
                "numbers",
                f"num_epochs must be > 0 when max_steps is not set, not {epochs!r}",
                r.where("num_epochs"),
            )
        )
    return out
