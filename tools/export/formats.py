"""The export formats a run is published in, by name: what `make push` uploads for each (and to which repo) and
what its model card says (the Hub's library name, tags, extra sections, usage). Adding a format is one
`register(Format(...))` (tools/export/export_formats.py holds the repo's: adapter, merged, gguf; whoever reads
the registry imports that module first), beside its manifest section (a field of core/manifest.py's Manifest) and
the module that builds it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from core.manifest import Manifest


@dataclass(frozen=True)
class Format:
    name: str  # the push's kind, and the key of PushSection.repos
    repo_suffix: str  # REPO + this is its Hub repo
    library: str  # the card's library_name
    title: str  # what the card calls it
    files: Callable[[Path, Manifest], list[Path] | None]  # what to upload; None: the run has not built it
    usage: Callable[[Manifest, str, bool], str]  # (manifest, repo id, has a Modelfile) -> the card's usage
    sections: Callable[[Manifest], list[str]] = field(default=lambda m: [])  # card sections of its own
    tags: tuple[str, ...] = ()


FORMATS: dict[str, Format] = {}


def register(fmt: Format) -> Format:
    FORMATS[fmt.name] = fmt
    return fmt


def all_formats() -> list[Format]:
    """Every registered format, in registration order (the order `make push` uploads them)."""
    return list(FORMATS.values())


def get(name: str) -> Format:
    if name not in FORMATS:
        raise KeyError(f"unknown export format '{name}' (known: {', '.join(FORMATS)})")
    return FORMATS[name]
