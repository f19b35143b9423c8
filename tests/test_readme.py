"""The README's commands and recipe table match the repo (docs that name renamed things are a defect)."""

from __future__ import annotations

import re

from core.paths import REPO
from launch.recipe.registry import list_recipes

README = (REPO / "README.md").read_text()
MAKEFILE = (REPO / "Makefile").read_text()


def test_every_make_target_named_in_the_readme_exists():
    # as the before-stop hook reads it: `make x` in text, or a code line starting with make x
    named = set(re.findall(r"`make ([a-z][a-z0-9_-]*)", README)) | set(
        re.findall(r"^\s*(?:\$ )?make ([a-z][a-z0-9_-]*)", README, re.M)
    )
    targets = set(re.findall(r"^([a-z][a-z0-9_-]*):", MAKEFILE, re.M))
    assert named and named <= targets, f"README names missing targets: {sorted(named - targets)}"


def test_recipe_table_lists_exactly_the_recipes():
    section = README.split("\n## Recipes", 1)[1].split("\n#", 1)[0]
    table = set(re.findall(r"^\| `([a-z0-9-]+)` \|", section, re.M))
    assert table == set(list_recipes())


def test_readme_starts_with_the_two_commands():
    first_block = README.split("```bash", 1)[1].split("```", 1)[0]
    assert "make train" in first_block and "make test" in first_block
