"""The environment a child process (axolotl, torchrun, a llama.cpp server) gets: this process's environment
passed on, plus the hygiene every axolotl command needs (telemetry off: with no network it keeps the process
alive forever; W&B off unless the config asks for it)."""

from __future__ import annotations

import os
from collections.abc import Mapping

from core.paths import REPO

HYGIENE = {
    "AXOLOTL_DO_NOT_TRACK": "1",
    "TOKENIZERS_PARALLELISM": "false",
    "WANDB_MODE": "disabled",
    "DO_NOT_TRACK": "1",
    # ORPO and SimPO make axolotl import trl.experimental, which warns about it in every run
    "TRL_EXPERIMENTAL_SILENCE": "1",
}
OFFLINE = {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}


def child_env(offline: bool = False, extra: Mapping[str, str] | None = None, tracking: bool = False) -> dict[str, str]:
    """os.environ plus the hygiene defaults (kept when already set), offline flags when asked, then `extra`.
    tracking=True leaves WANDB_MODE alone (the config asked for W&B)."""
    env = {**os.environ}
    for key, value in HYGIENE.items():
        if tracking and key == "WANDB_MODE":
            continue
        env.setdefault(key, value)
    env["AXOLOTL_DO_NOT_TRACK"] = "1"
    # the repo's axolotl plugins (launch.seed_plugin, launch.rank_plugin, launch.telemetry_plugin) must import in the
    # child: axolotl up to 0.20 logs a plugin that fails to import and trains without it (0.21 stops). `make` exports PYTHONPATH; `python -m` and tests do not.
    paths = [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    if str(REPO) not in paths:
        env["PYTHONPATH"] = os.pathsep.join([str(REPO), *paths])
    if offline:
        env.update(OFFLINE)
    env.update(extra or {})
    return env


def without(names: set[str]) -> dict[str, str]:
    """os.environ minus `names` (a llama.cpp server reads MODEL, PORT, ... from the environment as settings)."""
    return {k: v for k, v in os.environ.items() if k.upper() not in names}
