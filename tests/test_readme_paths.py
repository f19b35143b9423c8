"""Every repository path the README names exists (docs that name renamed or moved files are a defect), and the
lint gate is clean (ruff check and ruff format --check with the rules in pyproject.toml), so `pytest tests`
alone catches what `make lint` would."""

from __future__ import annotations

import re
import subprocess
import sys

from core.paths import REPO

README = (REPO / "README.md").read_text(encoding="utf-8")
TOPS = ("core", "launch", "data", "eval", "tools", "bench", "tests", "recipes", "studies")
# a path-looking token in backticks or a code block, starting at one of our top-level folders
ALTERNATIVES = "|".join(TOPS)
PATH = re.compile(r"(?<![\w./-])((?:" + ALTERNATIVES + r")/[\w./<>*{}-]*[\w/])")
MODULE = re.compile(r"python -m ((?:" + ALTERNATIVES + r")(?:\.\w+)+)")


def named_paths() -> set[str]:
    return {m for m in PATH.findall(README) if not any(c in m for c in "<>*{}")}


def test_the_readme_names_paths():
    assert len(named_paths()) > 20  # the reader finds them: a README without paths would pass vacuously


def test_every_path_the_readme_names_exists():
    missing = sorted(p for p in named_paths() if not (REPO / p.rstrip("/")).exists())
    assert not missing, f"README names paths that do not exist: {missing}"


def test_every_module_the_readme_runs_exists():
    missing = [
        m
        for m in set(MODULE.findall(README))
        if not (
            REPO.joinpath(*m.split(".")).with_suffix(".py").is_file()
            or (REPO.joinpath(*m.split(".")) / "__main__.py").is_file()
        )
    ]
    assert not missing, missing


def test_the_lint_gate_is_clean():
    ruff = [sys.executable, "-m", "ruff"]
    check = subprocess.run([*ruff, "check", "."], cwd=REPO, capture_output=True, text=True)
    assert check.returncode == 0, check.stdout[-3000:]
    fmt = subprocess.run([*ruff, "format", "--check", "."], cwd=REPO, capture_output=True, text=True)
    assert fmt.returncode == 0, fmt.stdout[-3000:]
