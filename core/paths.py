"""Where the checkout's own things live: the repo and its recipes (the outputs folder and the cache are settings:
OUTPUTS and AFFINAGE_CACHE, core/settings.py)."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
RECIPES = REPO / "recipes"
FRAGMENTS = RECIPES / "fragments"


def repo_relative(path: Path) -> str:
    """`path` relative to the checkout when it is inside it (what manifests and messages show), else absolute."""
    path = Path(path)
    try:
        return str(path.resolve().relative_to(REPO))
    except ValueError:
        return str(path)
