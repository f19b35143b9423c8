"""Recipe composition: a YAML file and everything it `extends`, merged in order (dicts merge, lists replace,
a null value removes the key), with the file and line every key came from so errors can point at it."""

from __future__ import annotations

from pathlib import Path

from core.errors import UserError, Where
from core.paths import RECIPES, repo_relative
from core.yamlio import load_with_lines

Origins = dict[str, tuple[Path, int | None]]


def merge_into(
    base: dict, over: dict, origins: dict, over_origins: dict, prefix: str = "", keep_nulls: bool = False
) -> None:
    """Merge `over` into `base` in place: dicts recurse, anything else replaces, None deletes.

    While composing (keep_nulls) a None is kept as a deletion marker, so a fragment's null still removes
    the key from whatever it is merged over later; strip_nulls applies the markers at the end."""
    for key, value in over.items():
        dotted = f"{prefix}.{key}" if prefix else str(key)
        if value is None:
            for k in [k for k in origins if k == dotted or k.startswith(dotted + ".")]:
                del origins[k]
            if keep_nulls:
                base[key] = None
                if dotted in over_origins:
                    origins[dotted] = over_origins[dotted]
            else:
                base.pop(key, None)
            continue
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            if dotted in over_origins:
                origins[dotted] = over_origins[dotted]
            merge_into(base[key], value, origins, over_origins, dotted, keep_nulls)
            continue
        base[key] = value
        for k in [k for k in origins if k.startswith(dotted + ".") or k.startswith(dotted + "[")]:
            del origins[k]
        for k, v in over_origins.items():
            if k == dotted or k.startswith(dotted + ".") or k.startswith(dotted + "["):
                origins[k] = v


def strip_nulls(data: dict) -> dict:
    """Apply deletion markers left by compose: drop None values, recursively."""
    return {k: strip_nulls(v) if isinstance(v, dict) else v for k, v in data.items() if v is not None}


def compose(path: Path, _stack: tuple[Path, ...] = ()) -> tuple[dict, dict, list[Path]]:
    """Load a YAML file and everything it extends; return (data with null markers, origins, files in order)."""
    path = Path(path).resolve()
    if path in _stack:
        chain = " -> ".join(repo_relative(p) for p in (*_stack, path))
        raise UserError(f"extends loop: {chain}", Where(repo_relative(path), key="extends"))
    data, lines = load_with_lines(path)
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise UserError("a recipe or fragment must be a YAML mapping", Where(repo_relative(path), 1))
    own_origins = {k: (path, line) for k, line in lines.items()}
    extends = data.pop("extends", []) or []
    if isinstance(extends, str):
        extends = [extends]
    merged: dict = {}
    origins: dict = {}
    files: list[Path] = []
    for i, ref in enumerate(extends):
        target = (path.parent / ref).resolve()
        if not target.is_file():
            raise UserError(
                f"extends names a missing file '{ref}'",
                Where(repo_relative(path), lines.get(f"extends[{i}]", lines.get("extends")), "extends"),
                f"fragments live under {repo_relative(RECIPES / 'fragments')}",
            )
        sub, sub_origins, sub_files = compose(target, (*_stack, path))
        merge_into(merged, sub, origins, sub_origins, keep_nulls=True)
        files += [f for f in sub_files if f not in files]
    merge_into(merged, data, origins, own_origins, keep_nulls=True)
    files.append(path)
    return merged, origins, files
