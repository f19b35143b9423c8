"""Where things live: the repo, its recipes, the outputs folder and the model cache."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
RECIPES = REPO / "recipes"
FRAGMENTS = RECIPES / "fragments"


def outputs_dir() -> Path:
    """Root of run directories; OUTPUTS overrides (tests point it at a temp dir)."""
    from core import settings

    return settings.load().outputs


def cache_dir() -> Path:
    """Materialized local models and other rebuildable things; AFFINAGE_CACHE overrides."""
    from core import settings

    return settings.load().cache


def repo_relative(path: Path) -> str:
    """`path` relative to the checkout when it is inside it (what manifests and messages show), else absolute."""
    path = Path(path)
    try:
        return str(path.resolve().relative_to(REPO))
    except ValueError:
        return str(path)
