"""Preflight: experiment tracking through axolotl's own keys (W&B: wandb_*, MLflow: mlflow_*, TensorBoard:
use_tensorboard), off unless the config asks. Keys only ever come from the environment (WANDB_API_KEY,
MLFLOW_TRACKING_TOKEN, ...): a credential written in a config file is an error, since config.yaml is copied into
every run directory and model card."""

from __future__ import annotations

import re
from typing import Any

from launch.preflight.findings import Finding
from resolver.resolve import Resolved

CREDENTIAL_KEYS = ("comet_api_key", "wandb_api_key", "hf_token", "mlflow_tracking_token")
TOKEN_SHAPE = re.compile(r"^(hf_[A-Za-z0-9]{20,}|sk-[A-Za-z0-9_-]{20,}|rpa_[A-Za-z0-9]{20,}|[0-9a-f]{40})$")


def wants_wandb(config: dict[str, Any]) -> bool:
    return bool(config.get("use_wandb") or config.get("wandb_project"))


def trackers(config: dict[str, Any]) -> list[str]:
    out = []
    if wants_wandb(config):
        out.append(f"W&B project {config.get('wandb_project')}")
    if config.get("use_mlflow") or config.get("mlflow_experiment_name") or config.get("mlflow_tracking_uri"):
        out.append(f"MLflow {config.get('mlflow_tracking_uri') or '(MLFLOW_TRACKING_URI)'}")
    if config.get("use_tensorboard"):
        out.append("TensorBoard (output/runs)")
    return out


def check_tracking(r: Resolved) -> list[Finding]:
    cfg, out = r.config, []
    for key, value in cfg.items():
        if key in CREDENTIAL_KEYS or (isinstance(value, str) and TOKEN_SHAPE.match(value)):
            out.append(
                Finding(
                    "error",
                    "tracking",
                    f"'{key}' holds a credential in the config file",
                    r.where(key),
                    "remove it; keys come from the environment only (WANDB_API_KEY, MLFLOW_TRACKING_TOKEN, ...)",
                )
            )
    s = r.settings
    if (
        wants_wandb(cfg)
        and not s.secret("WANDB_API_KEY")
        and (s.raw("WANDB_MODE") or "").lower() not in ("offline", "disabled")
    ):
        out.append(
            Finding(
                "warning",
                "tracking",
                "W&B is on but WANDB_API_KEY is not set: the run will fail to log in",
                r.where("wandb_project"),
                "export WANDB_API_KEY=..., or WANDB_MODE=offline",
            )
        )
    on = trackers(cfg)
    out.append(
        Finding(
            "ok",
            "tracking",
            "logging to " + ", ".join(on)
            if on
            else "no experiment tracker (off unless the "
            "config sets wandb_project, mlflow_experiment_name or use_tensorboard)",
        )
    )
    return out
