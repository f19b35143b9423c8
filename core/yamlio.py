"""YAML in and out, keeping the line of every mapping key so errors can point at it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from core.errors import UserError, Where


class _LineLoader(yaml.SafeLoader):
    """SafeLoader that records, for each mapping key, the line it stands on."""


def _construct_mapping(loader: _LineLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    loader.flatten_mapping(node)
    mapping: dict = {}
    lines: dict = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if key in mapping:
            raise UserError(
                f"duplicate key '{key}'",
                Where(loader.name, key_node.start_mark.line + 1, str(key)),
                "keep one of the two entries",
            )
        mapping[key] = loader.construct_object(value_node, deep=True)
        lines[key] = key_node.start_mark.line + 1
    loader.key_lines[id(mapping)] = lines
    return mapping


_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def load_with_lines(path: Path) -> tuple[Any, dict[str, int]]:
    """Load a YAML file; return (data, {dotted.key: line}) for every mapping key in it."""
    text = Path(path).read_text(encoding="utf-8")
    loader = _LineLoader(text)
    loader.name = str(path)
    loader.key_lines = {}
    try:
        data = loader.get_single_data()
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        problem = getattr(exc, "problem", None) or str(exc)
        raise UserError(f"not valid YAML: {problem}", Where(path, line)) from None
    finally:
        loader.dispose()
    flat: dict[str, int] = {}

    def walk(obj: Any, prefix: str) -> None:
        if isinstance(obj, dict):
            lines = loader.key_lines.get(id(obj), {})
            for k, v in obj.items():
                dotted = f"{prefix}.{k}" if prefix else str(k)
                if k in lines:
                    flat[dotted] = lines[k]
                walk(v, dotted)
        elif isinstance(obj, list):
            for i, v in enumerate(obj):
                walk(v, f"{prefix}[{i}]")

    walk(data, "")
    return data, flat


def dump(data: Any) -> str:
    """YAML text in a stable, readable order (keys as written, not sorted)."""
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=110)
