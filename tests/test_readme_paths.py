"""Every repository path the README and the docs pages name exists, and every `python -m` module they run (docs that
name renamed or moved files are a defect); and the lint gate is clean (ruff check and ruff format --check with the
rules in pyproject.toml), so `pytest tests` alone catches what `make lint` would."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from core.paths import REPO

DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
TOPS = ("core", "resolver", "launch", "data", "eval", "tools", "bench", "tests", "recipes", "studies", "docs")
# a path-looking token in backticks or a code block, starting at one of our top-level folders
ALTERNATIVES = "|".join(TOPS)
PATH = re.compile(r"(?<![\w./-])((?:" + ALTERNATIVES + r")/[\w./<>*{}-]*[\w/])")
MODULE = re.compile(r"python -m ((?:" + ALTERNATIVES + r")(?:\.\w+)+)")
IDS = [p.relative_to(REPO).as_posix() for p in DOCS]


def named_paths(text: str) -> set[str]:
    return {m for m in PATH.findall(text) if not any(c in m for c in "<>*{}")}


def test_the_docs_name_paths():
    # the reader finds them: docs without paths would pass vacuously
    assert len(DOCS) > 10 and len(set().union(*(named_paths(p.read_text()) for p in DOCS))) > 60


@pytest.mark.parametrize("doc", DOCS, ids=IDS)
def test_every_path_a_page_names_exists(doc):
    missing = sorted(p for p in named_paths(doc.read_text()) if not (REPO / p.rstrip("/")).exists())
    assert not missing, f"{doc.name} names paths that do not exist: {missing}"


@pytest.mark.parametrize("doc", DOCS, ids=IDS)
def test_every_module_a_page_runs_exists(doc):
    missing = [
        m
        for m in set(MODULE.findall(doc.read_text()))
        if not (
            REPO.joinpath(*m.split(".")).with_suffix(".py").is_file()
            or (REPO.joinpath(*m.split(".")) / "__main__.py").is_file()
        )
    ]
    assert not missing, f"{doc.name} runs modules that do not exist: {missing}"


def test_the_path_reader_finds_a_missing_path():
    assert named_paths("see `launch/nothing_here.py` and recipes/<name>.yaml") == {"launch/nothing_here.py"}


def code_files() -> list:
    tops = ("core", "resolver", "launch", "data", "eval", "tools", "bench", "recipes", "studies")
    found = [p for top in tops for p in (REPO / top).rglob("*") if p.suffix in (".py", ".yaml", ".sh", ".toml")]
    return [*found, *(REPO / n for n in ("Makefile", "Dockerfile", "runpod.toml", ".ci/run"))]


def test_code_that_points_at_the_docs_points_at_a_page_or_heading():
    readme_heads = set(re.findall(r"^#+ (.+)$", (REPO / "README.md").read_text(), re.M))
    pages, sections = set(), set()
    for path in code_files():
        text = path.read_text(errors="replace")
        pages |= set(re.findall(r"(?<![\w/.-])docs/[\w-]+\.md", text))
        sections |= {(path.name, s) for s in re.findall(r'README,? "([^"]+)"', text)}
    assert pages, "no code points at a docs page: the reader is broken"
    assert not [p for p in pages if not (REPO / p).is_file()], pages
    assert not [s for s in sections if s[1] not in readme_heads], f"README sections that do not exist: {sections}"


def test_the_lint_gate_is_clean():
    ruff = [sys.executable, "-m", "ruff"]
    check = subprocess.run([*ruff, "check", "."], cwd=REPO, capture_output=True, text=True)
    assert check.returncode == 0, check.stdout[-3000:]
    fmt = subprocess.run([*ruff, "format", "--check", "."], cwd=REPO, capture_output=True, text=True)
    assert fmt.returncode == 0, fmt.stdout[-3000:]
