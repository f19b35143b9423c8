"""The recipe registry and resolution.

A recipe is recipes/<name>.yaml in axolotl's own format plus two keys of ours:
  extends: [fragment.yaml, ...]  composed in order, then the recipe on top (dicts merge, lists replace,
                                 a null value removes the key);
  meta:    our typed block (family, size, method, GPUs, eval suite, hub name), stripped before axolotl.
Every key remembers the file and line it came from, so errors can point at it.
"""
from __future__ import annotations

import difflib
import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from launch.errors import UserError, Where
from launch.paths import REPO, RECIPES
from launch.yamlio import load_with_lines

OURS = ("extends", "meta")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class GpuSuggestion(_Strict):
    type: str = Field(description="GPU model the recipe was sized for, e.g. A40, H100")
    count: int = Field(1, ge=0, description="0 for CPU-only recipes")


class LocalSource(_Strict):
    """A base model shipped inside a PyPI wheel as GGUF, materialized once into an HF folder."""

    package: str
    file: str
    eos_token: str | None = None
    pad_token: str | None = None


class Sampling(_Strict):
    """Recommended generation settings (the Brie cards: temperature 0.75, no top_p)."""

    temperature: float = 0.75
    top_p: float | None = None
    max_new_tokens: int = 512


class Meta(_Strict):
    description: str
    family: Literal["llama", "mistral", "qwen2", "qwen3", "gemma3"]
    params_b: float = Field(gt=0, description="parameter count in billions")
    method: Literal["lora", "qlora", "full"]
    gpu: GpuSuggestion
    data_format: Literal["messages", "prompt-completion"]
    eval_suite: str | None = None
    hub_name: str | None = None
    seed: str | None = Field(None, description="which seed document the settings come from")
    local_source: LocalSource | None = None
    sampling: Sampling = Sampling()
    distributed: Literal["auto", "none", "ddp", "zero1", "zero2", "zero3", "zero3-offload", "fsdp"] = Field(
        "auto", description="multi-GPU strategy; auto picks from the plan (launch/distributed.py)")


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
                return Where(_short(path), line, key)
            probe = probe.rsplit(".", 1)[0] if "." in probe else ""
        return Where(_short(self.path), None, key)

    @property
    def sha256(self) -> str:
        h = hashlib.sha256()
        for f in self.files:
            h.update(_short(f).encode() + b"\0" + f.read_bytes() + b"\0")
        return h.hexdigest()


def _short(path: Path) -> str:
    try:
        return str(Path(path).resolve().relative_to(REPO))
    except ValueError:
        return str(path)


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


def _merge(base: dict, over: dict, origins: dict, over_origins: dict, prefix: str = "",
           keep_nulls: bool = False) -> None:
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
            _merge(base[key], value, origins, over_origins, dotted, keep_nulls)
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
        chain = " -> ".join(_short(p) for p in (*_stack, path))
        raise UserError(f"extends loop: {chain}", Where(_short(path), key="extends"))
    data, lines = load_with_lines(path)
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise UserError("a recipe or fragment must be a YAML mapping", Where(_short(path), 1))
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
            raise UserError(f"extends names a missing file '{ref}'",
                            Where(_short(path), lines.get(f"extends[{i}]", lines.get("extends")), "extends"),
                            f"fragments live under {_short(RECIPES / 'fragments')}")
        sub, sub_origins, sub_files = compose(target, (*_stack, path))
        _merge(merged, sub, origins, sub_origins, keep_nulls=True)
        files += [f for f in sub_files if f not in files]
    _merge(merged, data, origins, own_origins, keep_nulls=True)
    files.append(path)
    return merged, origins, files


def load_recipe(name: str) -> Recipe:
    path = recipe_path(name)
    data, origins, files = compose(path)
    data = strip_nulls(data)
    meta_raw = data.pop("meta", None)
    rec_name = path.stem
    if meta_raw is None:
        raise UserError("recipe has no 'meta' block", Where(_short(path), key="meta"),
                        "add meta: {description, family, params_b, method, gpu, data_format}")
    try:
        meta = Meta.model_validate(meta_raw)
    except ValidationError as exc:
        err = exc.errors()[0]
        key = "meta." + ".".join(str(p) for p in err["loc"])
        recipe = Recipe(rec_name, path, data, None, origins, files)  # type: ignore[arg-type]
        raise UserError(f"{err['msg']}", recipe.where(key),
                        "see the Meta fields in launch/recipes.py") from None
    return Recipe(rec_name, path, data, meta, origins, files)


def dump_config(config: dict) -> str:
    return yaml.safe_dump(config, sort_keys=False, allow_unicode=True, width=110)
