"""axolotl's own schema, used offline: known keys, and validate_config with explicit capabilities
(no CUDA probe, no hub)."""

from __future__ import annotations

import copy
import difflib
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from launch.preflight.findings import Finding
from launch.preflight.schema_keys import schema_keys

# compute capability of the GPU types recipes suggest (validation needs one; the values are public specs)
COMPUTE_CAPABILITY = {
    "H100": "sm_90",
    "H200": "sm_90",
    "A100": "sm_80",
    "A100-80GB": "sm_80",
    "A40": "sm_86",
    "L4": "sm_89",
    "L40S": "sm_89",
    "RTX4090": "sm_89",
    "RTX5090": "sm_120",
    "A6000": "sm_86",
}
UNCHECKED = "axolotl's schema is not checked on this machine"


def unknown_keys(config: dict[str, Any], cache: Path) -> list[tuple[str, list[str]]]:
    """(dotted key, close matches) for every key axolotl's schema does not know (it drops them silently); the
    schema's key names come from the cache (launch/preflight/schema_keys.py), not from importing axolotl here."""
    keys = schema_keys(config.get("plugins") or [], cache)
    known, ds_known = keys.config, keys.dataset(config.get("rl"))
    found = []
    for key in config:
        if key not in known:
            found.append((key, difflib.get_close_matches(key, sorted(known), n=3, cutoff=0.75)))
    for section in ("datasets", "test_datasets"):
        for i, ds in enumerate(config.get(section) or []):
            for key in ds if isinstance(ds, dict) else []:
                if key not in ds_known:
                    close = difflib.get_close_matches(key, sorted(ds_known), n=3, cutoff=0.75)
                    found.append((f"{section}[{i}].{key}", close))
    return found


def capabilities_for(device: str, gpu_type: str | None, gpus: int) -> tuple[dict, dict]:
    import torch

    env = {"torch_version": torch.__version__.split("+")[0]}
    if device == "cpu":
        return {"bf16": False, "fp8": False, "tf32": False, "n_gpu": 0, "n_node": 1}, env
    cc = COMPUTE_CAPABILITY.get(gpu_type or "", "sm_80")
    major_minor = compute_capability_number(cc)
    bf16 = major_minor >= (8, 0)
    return {
        "bf16": bf16,
        "fp8": major_minor >= (8, 9),
        "tf32": bf16,
        "n_gpu": max(gpus, 1),
        "n_node": 1,
        "compute_capability": cc,
    }, env


def compute_capability_number(cc: str) -> tuple[int, int]:
    """'sm_90' -> (9, 0), 'sm_120' -> (12, 0): compared as numbers ('sm_120' < 'sm_80' as strings)."""
    digits = cc.removeprefix("sm_")
    return int(digits[:-1]), int(digits[-1])


def validate(config: dict[str, Any], device: str, gpu_type: str | None = None, gpus: int = 1):
    """axolotl's validate_config with explicit capabilities; returns the normalized config.

    Raises ValueError/ValidationError from axolotl; callers map them to recipe keys."""
    from axolotl.utils.config import validate_config
    from axolotl.utils.dict import DictDefault

    caps, env = capabilities_for(device, gpu_type, gpus)
    return validate_config(DictDefault(copy.deepcopy(config)), capabilities=caps, env_capabilities=env)


def first_error(exc: Exception) -> tuple[str | None, str]:
    """(dotted key or None, message) of a validation failure."""
    if isinstance(exc, ValidationError):
        err = exc.errors()[0]
        loc = ".".join(str(p) for p in err["loc"] if not str(p).startswith("function-"))
        return (loc or None), err["msg"]
    return None, str(exc)


def check_keys(r) -> list[Finding]:
    """Keys axolotl does not know (it drops them silently): a near miss of a known key is an error (a typo)."""
    findings = []
    try:
        unknown = unknown_keys(r.config, r.settings.cache)
    except ImportError as exc:  # a plugin whose package is not installed here
        plugins = ", ".join(r.config.get("plugins") or [])
        return [
            Finding(
                "warning",
                "schema",
                f"the config's plugins ({plugins}) cannot be loaded here ({exc}): {UNCHECKED}",
                r.where("plugins"),
                "install the plugin's package, or check on the machine that will train",
            )
        ]
    for key, close in unknown:
        if close:  # a near miss of a known key is a typo: training would silently use the default
            findings.append(
                Finding(
                    "error",
                    "schema",
                    f"axolotl does not know the key '{key}' (it would be ignored)",
                    r.where(key),
                    f"did you mean {', '.join(close)}?",
                )
            )
        else:
            findings.append(
                Finding(
                    "warning",
                    "schema",
                    f"axolotl does not know the key '{key}': it is ignored",
                    r.where(key),
                    "remove it if it was meant for another tool",
                )
            )
    return findings


def check_validate(r, keys: list[Finding]) -> list[Finding]:
    """axolotl's own validate_config (imports axolotl: a heavy check); `keys` is what check_keys found (a config
    whose plugins cannot be loaded is not validated here, and `accepted` is said only with every key known)."""
    if any(f.message.endswith(UNCHECKED) for f in keys):
        return []
    meta = r.meta
    try:
        validate(r.config, r.device, meta.gpu.type if meta.gpu else None, meta.gpu.count if meta.gpu else 1)
        return [] if keys else [Finding("ok", "schema", "accepted by axolotl's validate_config")]
    except Exception as exc:  # noqa: BLE001 - axolotl raises ValueError and pydantic errors
        key, msg = first_error(exc)
        return [
            Finding(
                "error",
                "schema",
                f"axolotl rejects the config: {msg}",
                r.where(key) if key else r.where(""),
            )
        ]
