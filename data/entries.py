"""What an axolotl config's dataset entries point at: the file (relative paths are from the repo root) and the
record format axolotl will read it as."""

from __future__ import annotations

from pathlib import Path

from core.paths import REPO


def dataset_file(ds: dict) -> Path:
    path = Path(ds["path"]).expanduser()
    return path if path.is_absolute() else REPO / path


def dataset_format(ds: dict) -> tuple[str, dict]:
    """(format, field names) axolotl will read this dataset entry as."""
    kind = ds.get("type")
    if isinstance(kind, dict):
        return "prompt-completion", {
            "prompt": kind.get("field_instruction", "instruction"),
            "completion": kind.get("field_output", "output"),
        }
    if kind == "chat_template":
        return "messages", {"field": ds.get("field_messages", "messages")}
    return "other", {}


def dataset_entries(config: dict) -> list[tuple[str, int, dict]]:
    """(section, index, entry) for every training and held-out dataset."""
    return [
        (section, i, ds) for section in ("datasets", "test_datasets") for i, ds in enumerate(config.get(section) or [])
    ]
