"""The one place where a CPU run switches the GPU fast path off (recipes/fragments/hardware/cpu.yaml)."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from core.paths import FRAGMENTS
from core.settings import Settings
from resolver.compose import compose, merge_into

CPU_OVERLAY = FRAGMENTS / "hardware" / "cpu.yaml"
# device nodes of a GPU driver torch can use (NVIDIA, WSL's, ROCm's): without one torch sees no CUDA
GPU_DEVICE_NODES = ("/dev/nvidiactl", "/dev/nvidia0", "/dev/dxg", "/dev/kfd")


def cuda_available(s: Settings) -> bool:
    """torch's answer, asked only where it can be yes: importing torch costs seconds, and a machine without a GPU
    driver's device node, or with every GPU hidden (CUDA_VISIBLE_DEVICES empty or -1), has no CUDA."""
    hidden = s.env.get("CUDA_VISIBLE_DEVICES") in ("", "-1")
    if hidden or not any(Path(p).exists() for p in GPU_DEVICE_NODES):
        return False
    import torch

    return torch.cuda.is_available()


def detect_device(s: Settings) -> str:
    """DEVICE=cpu|gpu wins (validated in core/settings.py); otherwise gpu when torch sees CUDA."""
    if s.device:
        return s.device
    return "gpu" if cuda_available(s) else "cpu"


def gpu_count(s: Settings) -> int:
    if not cuda_available(s):
        return 0
    import torch

    return torch.cuda.device_count()


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
    merge_into(config, overlay, {}, {})
    if changed:
        notes.append("CPU profile (recipes/fragments/hardware/cpu.yaml) set: " + ", ".join(changed))
    return config, notes
