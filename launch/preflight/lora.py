"""Preflight: LoRA targets exist in the real architecture (built on torch's meta device) and stay out of a
vision tower."""

from __future__ import annotations

import os

from core.errors import UserError
from launch.preflight.findings import Finding
from resolver import architecture as arch
from resolver.resolve import Resolved


def check_lora_targets(r: Resolved) -> list[Finding]:
    cfg = r.config
    if cfg.get("adapter") not in ("lora", "qlora"):
        return []
    base = cfg["base_model"] if os.path.exists(cfg["base_model"]) else r.hub_base_model
    try:
        cls, params, _ = arch.architecture(base, cache=r.settings.cache)
    except UserError as exc:
        return [Finding("warning", "lora targets", exc.message, hint=exc.hint)]
    where = r.where("lora_target_modules")
    if cfg.get("lora_target_linear"):
        target = ".*"
        hits = [lin for lin in arch.lora_targets(base, target, cache=r.settings.cache) if "lm_head" not in lin.name]
    else:
        target = cfg.get("lora_target_modules")
        if not target:
            return [Finding("error", "lora targets", "no lora_target_modules (and lora_target_linear is off)", where)]
        if isinstance(target, list):
            missing = arch.missing_targets(base, target, cache=r.settings.cache)
            if missing:
                return [
                    Finding(
                        "error",
                        "lora targets",
                        f"{cls} has no module named {', '.join(missing)}",
                        where,
                        "module names are in the model's transformers class, e.g. q_proj, o_proj, down_proj",
                    )
                ]
        hits = arch.lora_targets(base, target, cache=r.settings.cache)
    if not hits:
        return [Finding("error", "lora targets", f"pattern {target!r} matches no Linear module of {cls}", where)]
    vision = [h.name for h in hits if arch.in_tower(base, h.name, cache=r.settings.cache)]
    if vision:
        return [
            Finding(
                "error",
                "lora targets",
                f"{len(vision)} targets are in the vision tower (e.g. {vision[0]}); "
                "text-only training would put LoRA on SigLIP",
                where,
                "use a regex limited to the language model: '.*language_model.*\\.(q_proj|...|down_proj)'",
            )
        ]
    rank = int(cfg.get("lora_r") or 8)
    n = sum(rank * (h.in_features + h.out_features) for h in hits)
    return [
        Finding(
            "ok",
            "lora targets",
            f"{len(hits)} modules of {cls} ({params / 1e9:.2f}B params); LoRA r={rank} trains {n / 1e6:.1f}M params",
        )
    ]
