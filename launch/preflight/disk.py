"""Preflight: what a run, its merge and its GGUF files write under OUTPUTS, and the base model download under
HF_HOME, against the free space there (the plan's formula, launch/preflight/estimate.py), on the machine that
trains: what training writes refuses the run, what make merge and make gguf write later only warns. A GPU run checked where it will not train (a GPU recipe on a laptop with no CUDA) reports instead the
volume `make plan` / `make runpod-up` will ask RunPod for (VOLUME_GB= when given); the check runs again where it
trains. A model whose size is not known here (no facts, no meta.params_b) needs an unknown amount, never 0: a
warning naming the command that fetches the facts (make plan and make runpod-up refuse until they are here)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from core.errors import UserError
from launch.preflight.findings import Finding
from resolver.resolve import Resolved


def free_bytes(path: Path) -> tuple[int, Path]:
    """Free space on the volume that holds `path` (its nearest existing parent)."""
    path = Path(path)
    probe = next((p for p in [path, *path.parents] if p.exists()), Path("/"))
    return shutil.disk_usage(probe).free, probe


def disk_need(r: Resolved) -> tuple[dict[str, float], float] | None:
    """(parts in GB, base download in GB): what this run and its merge + GGUF write under OUTPUTS, and the base
    model download (into HF_HOME) when it is not local. None when the model's size is not known here."""
    from launch.preflight import estimate as est

    cfg = r.config
    local = os.path.exists(cfg["base_model"])
    try:
        m = est.model_facts(cfg, cfg["base_model"] if local else r.hub_base_model, r.settings.cache)
    except UserError:  # an architecture without offline facts: parameters from meta, 2 % of them trained
        if not r.meta.params_b:
            return None
        params = int(r.meta.params_b * 1e9)
        trained = int(params * 0.02) if cfg.get("adapter") in ("lora", "qlora") else params
        m = est.Model(params, trained, 0, 0, 0, 0, 0, 0)
    parts = est.disk(m, cfg, downloads_base=False).parts
    download = 0.0 if local else m.params * 2.0 / 1e9
    return parts, download


def unknown_finding(r: Resolved, volume_gb: int | None) -> Finding:
    from resolver.facts import fetch_hint

    # make plan / runpod-up fetch the facts when the Hub can be reached; without them memory cannot be planned
    then = "make plan and make runpod-up refuse until its facts are here" + (
        f" (then runpod-up asks RunPod for VOLUME_GB={volume_gb} GB)" if volume_gb else ""
    )
    return Finding(
        "warning",
        "disk",
        f"needs an unknown amount: the size of {r.hub_base_model} is not known here (no facts, no meta.params_b); "
        f"{then}",
        r.where("base_model"),
        fetch_hint(r.hub_base_model),
    )


def trains_here(r: Resolved) -> bool:
    """Whether this machine is the one the run trains on: a CPU run, or a GPU run on a machine with CUDA."""
    from resolver.profiles import cuda_available

    return r.device == "cpu" or cuda_available(r.settings)


def volume_finding(r: Resolved, parts: dict[str, float], download: float, volume_gb: int | None = None) -> Finding:
    from launch.preflight import estimate as est

    total = sum(parts.values()) + download
    detail = ", ".join(f"{k} {v:.2f}" for k, v in parts.items()) + (
        f", base download {download:.1f}" if download else ""
    )
    asks = f"VOLUME_GB={volume_gb} GB" if volume_gb else f"a {est.volume_gb(total)} GB volume"
    return Finding(
        "ok",
        "disk",
        f"trains on a GPU machine, not here: needs {total:.1f} GB there ({detail}); make runpod-up asks RunPod for "
        f"{asks}. The disk is checked again where it trains.",
    )


def check_disk(r: Resolved, here: bool | None = None) -> list[Finding]:
    s = r.settings
    sized = disk_need(r)
    if sized is None:
        return [unknown_finding(r, s.volume_gb)]
    parts, download = sized
    if not (trains_here(r) if here is None else here):
        return [volume_finding(r, parts, download, s.volume_gb)]
    from launch.preflight.estimate import is_export

    # make train must not be refused for what later steps write: the training's own parts are the error, a disk
    # too small for the merged model and GGUF files is a warning (the pod sizes its volume for both: volume_finding)
    train = {k: v for k, v in parts.items() if not is_export(k)}
    export = {k: v for k, v in parts.items() if is_export(k)}
    need, later = sum(train.values()) * 1e9, sum(export.values()) * 1e9
    free, probe = free_bytes(s.outputs)
    detail = ", ".join(f"{k} {v:.2f}" for k, v in train.items())
    msg = f"training needs {need / 1e9:.2f} GB under OUTPUTS ({detail}); {free / 1e9:.1f} GB free at {probe}"
    out = []
    if need > free:
        out.append(
            Finding(
                "error",
                "disk",
                msg,
                r.where("save_total_limit"),
                "free space, lower save_total_limit, or set OUTPUTS to a bigger volume",
            )
        )
    else:
        out.append(Finding("ok", "disk", msg))
    if export and need + later > free:
        out.append(
            Finding(
                "warning",
                "disk",
                f"make merge and make gguf need {later / 1e9:.2f} GB more ("
                + ", ".join(f"{k} {v:.2f}" for k, v in export.items())
                + f"): {(need + later) / 1e9:.2f} GB in all, {free / 1e9:.1f} GB free at {probe}",
                None,
                "free space before make merge / make gguf, or set OUTPUTS to a bigger volume",
            )
        )
    if download:
        hf_free, hf_probe = free_bytes(s.hf_home)
        dl = f"base model download {download:.1f} GB; {hf_free / 1e9:.1f} GB free at {hf_probe} (HF_HOME)"
        out.append(
            Finding(
                "error" if download * 1e9 > hf_free else "ok",
                "disk",
                dl,
                None,
                "point HF_HOME at a bigger volume" if download * 1e9 > hf_free else None,
            )
        )
    return out
