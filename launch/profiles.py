"""The one place where a CPU run switches the GPU fast path off (recipes/fragments/hardware/cpu.yaml)."""
from __future__ import annotations

import copy
import os
from typing import Any

from launch.errors import UserError
from launch.paths import FRAGMENTS
from launch.recipes import _merge, compose

CPU_OVERLAY = FRAGMENTS / "hardware" / "cpu.yaml"
DEVICES = ("cpu", "gpu")


def detect_device() -> str:
    """DEVICE=cpu|gpu wins; otherwise gpu when torch sees CUDA."""
    forced = os.environ.get("DEVICE", "").strip().lower()
    if forced:
        if forced not in DEVICES:
            raise UserError(f"DEVICE must be one of {', '.join(DEVICES)}, not '{forced}'")
        return forced
    import torch

    return "gpu" if torch.cuda.is_available() else "cpu"


def gpu_count() -> int:
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def apply(config: dict[str, Any], device: str) -> tuple[dict[str, Any], list[str]]:
    """Return (config for `device`, notes on what changed and why)."""
    config = copy.deepcopy(config)
    notes: list[str] = []
    if device != "cpu":
        return config, notes
    if config.get("adapter") == "qlora":
        notes.append("CPU: qlora needs bitsandbytes on CUDA; training plain LoRA on the unquantized base")
        config["adapter"] = "lora"
    overlay, _, _ = compose(CPU_OVERLAY)
    changed = sorted(k for k, v in overlay.items() if config.get(k) != v and not (v is None and k not in config))
    _merge(config, overlay, {}, {})
    if changed:
        notes.append("CPU profile (recipes/fragments/hardware/cpu.yaml) set: " + ", ".join(changed))
    return config, notes
