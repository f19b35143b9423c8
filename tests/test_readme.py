"""The README and the docs pages match the repo: every `make` target they name exists (as the before-stop hook
reads it), the recipe table lists exactly the recipes, the README is short and starts with the two set-up
commands, it links every docs page, every relative link resolves (to a file, and to a heading where it names one),
and no page grows past what one topic needs."""

from __future__ import annotations

import re

import pytest

from core.paths import REPO
from resolver.registry import list_recipes

README = (REPO / "README.md").read_text()
MAKEFILE = (REPO / "Makefile").read_text()
PAGES = sorted((REPO / "docs").glob("*.md"))
DOCS = [REPO / "README.md", *PAGES]
IDS = [p.relative_to(REPO).as_posix() for p in DOCS]
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def make_targets_named(text: str) -> set[str]:
    # as the before-stop hook reads it: `make x` in text, or a code line starting with make x
    return set(re.findall(r"`make ([a-z][a-z0-9_-]*)", text)) | set(
        re.findall(r"^\s*(?:\$ )?make ([a-z][a-z0-9_-]*)", text, re.M)
    )


def without_code(text: str) -> str:
    return re.sub(r"^```.*?^```", "", text, flags=re.M | re.S)


def anchors(text: str) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens."""
    heads = re.findall(r"^#+ (.+)$", without_code(text), re.M)
    return {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-") for h in heads}


@pytest.mark.parametrize("doc", DOCS, ids=IDS)
def test_every_make_target_a_page_names_exists(doc):
    targets = set(re.findall(r"^([a-z][a-z0-9_-]*):", MAKEFILE, re.M))
    named = make_targets_named(doc.read_text())
    assert named <= targets, f"{doc.name} names missing targets: {sorted(named - targets)}"


def test_the_target_reader_reads_text_and_code_lines():
    assert make_targets_named("run `make nope X=1`\n```bash\nmake other RECIPE=x\n```\n") == {"nope", "other"}
    assert len(set().union(*(make_targets_named(d.read_text()) for d in DOCS))) > 25


def test_recipe_table_lists_exactly_the_recipes():
    section = README.split("\n## Recipes", 1)[1].split("\n#", 1)[0]
    table = set(re.findall(r"^\| `([a-z0-9-]+)` \|", section, re.M))
    assert table == set(list_recipes())


def test_readme_starts_with_the_two_commands():
    first_block = README.split("```bash", 1)[1].split("```", 1)[0]
    assert "make train" in first_block and "make test" in first_block


def test_the_readme_is_short_and_links_every_page():
    assert len(README.splitlines()) <= 200
    linked = {(REPO / target.split("#")[0]).resolve() for target in LINK.findall(README)}
    assert PAGES and not [p.name for p in PAGES if p.resolve() not in linked]


@pytest.mark.parametrize("doc", DOCS, ids=IDS)
def test_every_relative_link_resolves(doc):
    bad = []
    for target in LINK.findall(doc.read_text()):
        if re.match(r"[a-z]+:", target):
            continue  # a URL
        path, _, anchor = target.partition("#")
        dest = (doc.parent / path).resolve() if path else doc
        exists = dest.exists()
        if not exists or (anchor and dest.suffix == ".md" and anchor not in anchors(dest.read_text())):
            bad.append(target)
    assert not bad, f"{doc.name} links to what does not exist: {bad}"


def test_the_anchor_reader_drops_punctuation_and_code_blocks():
    assert anchors("# A `make plan`: fits?\n```\n# not a heading\n```\n") == {"a-make-plan-fits"}


@pytest.mark.parametrize("doc", PAGES, ids=[p.name for p in PAGES])
def test_each_page_stays_one_topic(doc):
    lines = doc.read_text().splitlines()
    assert len(lines) < 400 and lines[0].startswith("# ")
