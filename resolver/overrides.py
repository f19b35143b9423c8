"""`ARGS="--key=value ..."` overrides in axolotl's own CLI spelling, applied after the recipe."""

from __future__ import annotations

import re
import shlex
from typing import Any

import yaml

from core.errors import UserError, Where

KEY = re.compile(r"[A-Za-z_][\w-]*(\.(\d+|[A-Za-z_][\w-]*))*")


def parse(args: str | list[str] | None) -> dict[str, Any]:
    """'--max_steps=3 --lora_r 4 --datasets.0.path=x' -> {'max_steps': 3, 'lora_r': 4, ...}."""
    if not args:
        return {}
    tokens = shlex.split(args) if isinstance(args, str) else list(args)
    out: dict[str, Any] = {}
    i = 0
    while i < len(tokens):
        tok = tokens[i]
        if not tok.startswith("--"):
            raise UserError(f"override '{tok}' must look like --key=value", Where(key="ARGS"))
        key, sep, raw = tok[2:].partition("=")
        if not sep:
            if i + 1 >= len(tokens) or tokens[i + 1].startswith("--"):
                raise UserError(f"override '--{key}' has no value", Where(key="ARGS"), "write --key=value")
            raw = tokens[i + 1]
            i += 1
        if not KEY.fullmatch(key):
            raise UserError(
                f"override '--{key}': a key is names and list indices joined by dots",
                Where(key="ARGS"),
                f"--{re.sub(r'\[(\d+)\]', r'.\1', key)}=... (axolotl's spelling: datasets.0.path)",
            )
        value = yaml.safe_load(raw)
        if isinstance(value, bool) and raw.strip().lower() not in ("true", "false"):
            value = raw  # YAML 1.1 reads no/yes/on/off as booleans; --eval_strategy=no means the string
        out[key.replace("-", "_") if "." not in key else key] = value
        i += 1
    return out


def _item(node: list, part: str, dotted: str) -> int:
    if not part.isdigit() or int(part) >= len(node):
        raise UserError(
            f"override '--{dotted}': '{part}' is not an item of a list of {len(node)}",
            Where(key="ARGS"),
            f"list items are numbered from 0 to {len(node) - 1}" if node else "the list is empty",
        )
    return int(part)


def apply(config: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """Set dotted keys ('datasets.0.path') in place; a value of null removes the key."""
    for dotted, value in overrides.items():
        parts = dotted.split(".")
        node: Any = config
        for part in parts[:-1]:
            if isinstance(node, list):
                node = node[_item(node, part, dotted)]
            elif isinstance(node, dict):
                node = node.setdefault(part, {})
            else:
                raise UserError(f"override '--{dotted}': '{part}' is set to a value, not a mapping", Where(key="ARGS"))
        last = parts[-1]
        if isinstance(node, list):
            node[_item(node, last, dotted)] = value
        elif value is None:
            node.pop(last, None)
        else:
            node[last] = value
    return config
