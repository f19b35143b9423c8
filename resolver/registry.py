"""The recipe registry: every recipe under recipes/ by name (or a recipe file of the user's own by path),
loaded into a `Recipe`: the composed axolotl config, the typed meta, and where each key came from.

A recipe is recipes/<name>.yaml in axolotl's own format plus two keys of ours:
  extends: [fragment.yaml, ...]  composed in order, then the recipe on top (resolver/compose.py);
  meta:    our typed block (resolver/meta.py), stripped before axolotl sees the config.
"""

from __future__ import annotations

import difflib
import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from core.errors import UserError, Where
from core.paths import RECIPES, repo_relative
from resolver.compose import compose, strip_nulls
from resolver.meta import Meta

OURS = ("extends", "meta")


@dataclass
class Recipe:
    name: str
    path: Path
    config: dict[str, Any]
    meta: Meta
    origins: dict[str, tuple[Path, int | None]] = field(default_factory=dict)
    files: list[Path] = field(default_factory=list)

    def where(self, key: str) -> Where:
        """The file and line that set `key` (or its nearest set parent)."""
        probe = key
        while probe:
            if probe in self.origins:
                path, line = self.origins[probe]
                return Where(repo_relative(path), line, key)
            probe = probe.rsplit(".", 1)[0] if "." in probe else ""
        return Where(repo_relative(self.path), None, key)

    @property
    def sha256(self) -> str:
        h = hashlib.sha256()
        for f in self.files:
            h.update(repo_relative(f).encode() + b"\0" + f.read_bytes() + b"\0")
        return h.hexdigest()


def list_recipes() -> list[str]:
    return sorted(p.stem for p in RECIPES.glob("*.yaml"))


def recipe_path(name: str) -> Path:
    """A registered recipe name, or a path to a recipe file of the user's own."""
    candidate = Path(name).expanduser()
    if candidate.suffix in (".yaml", ".yml") and candidate.is_file():
        return candidate.resolve()
    path = RECIPES / f"{name}.yaml"
    if path.is_file():
        return path
    close = difflib.get_close_matches(name, list_recipes(), n=3, cutoff=0.5)
    hint = f"did you mean: {', '.join(close)}?" if close else "make recipes lists them"
    raise UserError(f"unknown recipe '{name}'", Where(RECIPES), hint)


def load_recipe(name: str) -> Recipe:
    """A recipe of ours or any axolotl config file; a `meta` block is optional (resolver/derive.py fills in what
    it does not say when the recipe is resolved)."""
    path = recipe_path(name)
    data, origins, files = compose(path)
    data = strip_nulls(data)
    meta_raw = data.pop("meta", None) or {}
    rec_name = path.stem
    if not isinstance(meta_raw, dict):
        raise UserError(
            "meta must be a mapping of fields",
            Where(repo_relative(path), key="meta"),
            "see the Meta fields in resolver/meta.py",
        )
    try:
        meta = Meta.model_validate(meta_raw)
    except ValidationError as exc:
        err = exc.errors()[0]
        key = "meta." + ".".join(str(p) for p in err["loc"])
        recipe = Recipe(rec_name, path, data, None, origins, files)  # type: ignore[arg-type]
        raise UserError(f"{err['msg']}", recipe.where(key), "see the Meta fields in resolver/meta.py") from None
    return Recipe(rec_name, path, data, meta, origins, files)
