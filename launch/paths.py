"""Where things live: the repo, its recipes, the outputs folder and the model cache."""
from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
RECIPES = REPO / "recipes"
FRAGMENTS = RECIPES / "fragments"


def outputs_dir() -> Path:
    """Root of run directories; OUTPUTS overrides (tests point it at a temp dir)."""
    return Path(os.environ.get("OUTPUTS", REPO / "outputs")).resolve()


def cache_dir() -> Path:
    """Materialized local models and other rebuildable things; AFFINAGE_CACHE overrides."""
    default = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "affinage"
    return Path(os.environ.get("AFFINAGE_CACHE", default)).resolve()
