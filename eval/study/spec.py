"""The study file, typed: which models to train (a list of recipes, or one recipe x several base models or
hyperparameter values), shared overrides, training seeds to repeat, how to evaluate and judge them, and the
budget for pods. A mistake is one error naming the file, line and key (core/yamlio.py's line map).

    name: personas-phase2          # default: the file's stem
    runs:                          # either a list of runs ...
      - {recipe: llama31-8b-instruct}
      - {name: qwen3-32b-lr1e-4, recipe: qwen3-32b, overrides: {learning_rate: 1.0e-4}}
    grid:                          # ... or one recipe x values (every combination of the keys)
      recipe: llama3-8b
      over: {base_model: [meta-llama/Meta-Llama-3-8B, meta-llama/Meta-Llama-3-8B-Instruct]}
    overrides: {num_epochs: 6}     # for every run (a run's own overrides win)
    seeds: [42, 43]                # each run trained once per seed; the spread is reported, not averaged
    eval: {backends: [hf, base], limit: 62, max_gen_toks: 128}
    judge: {judges: [gpt-4o], suite: personas, limit: 20}
    budget: {max_cost: 40}         # USD over all pods (RUNPOD=1); MAX_COST overrides
    hub_repo: me/personas-study    # private results repo the pods upload to (RUNPOD=1); STUDY_REPO overrides
"""

from __future__ import annotations

import itertools
import json
import re
import shlex
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from core import rundir, yamlio
from core.errors import UserError, Where
from core.paths import REPO

SLUG = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
RESERVED = {"report", "logs", "hub", "state.json", "state.json.bak"}  # names of a study folder's own entries


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RunItem(_Strict):
    name: str | None = Field(None, description="the run's name in tables (default: the recipe's name)")
    recipe: str = Field(description="a recipe name (make recipes) or a recipe file")
    overrides: dict[str, Any] = {}


class Grid(_Strict):
    recipe: str
    over: dict[str, list[Any]] = Field(description="key -> values; one run per combination")

    @field_validator("over")
    @classmethod
    def _values(cls, v: dict[str, list[Any]]) -> dict[str, list[Any]]:
        if not v:
            raise ValueError("give at least one key with values")
        for key, values in v.items():
            if len(values) < 1:
                raise ValueError(f"'{key}' has no values")
        return v


class EvalSpec(_Strict):
    backends: list[Literal["hf", "base"]] = Field(["hf", "base"], description="base: the base model alone")
    limit: int | None = Field(None, ge=1, description="held-out documents per model (default: all)")
    max_gen_toks: int = Field(128, ge=1)

    @field_validator("backends")
    @classmethod
    def _base(cls, v: list[str]) -> list[str]:
        if "hf" not in v:
            raise ValueError("must include hf (the fine-tuned model)")
        return v


class JudgeSpec(_Strict):
    judges: list[str] = Field([], description="names from eval/judges.yaml; none: no judging")
    suite: str | None = Field(None, description="eval/suites/<name>.jsonl or a file (default: the recipe's)")
    limit: int | None = Field(None, ge=1)
    max_new_tokens: int | None = Field(None, ge=1)
    max_cost: float = Field(5.0, ge=0, description="USD cap on each run's judge calls")
    min_consistency: float | None = Field(None, ge=0, le=1)


class Budget(_Strict):
    max_cost: float | None = Field(None, gt=0, description="USD over all pods (RUNPOD=1)")
    gpu: str | None = Field(None, description="GPU type for every pod (default: each recipe's meta.gpu)")
    gpus: int | None = Field(None, ge=1)


class Study(_Strict):
    name: str | None = None
    description: str = ""
    runs: list[RunItem] | None = None
    grid: Grid | None = None
    overrides: dict[str, Any] = {}
    seeds: list[int] | None = Field(None, min_length=1, description="training seeds (default: the recipe's)")
    eval: EvalSpec = EvalSpec()
    judge: JudgeSpec = JudgeSpec()
    budget: Budget = Budget()
    hub_repo: str | None = Field(None, pattern=r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
    upload_adapter: bool = False
    retries: int = Field(1, ge=0, le=3, description="a failed run is tried again this many times")

    @model_validator(mode="after")
    def _one_source(self) -> Study:
        if (self.runs is None) == (self.grid is None):
            raise ValueError("give either 'runs' (a list) or 'grid' (one recipe x values), not both or neither")
        if self.runs is not None and not self.runs:
            raise ValueError("'runs' is empty")
        if self.seeds is not None and len(set(self.seeds)) != len(self.seeds):
            raise ValueError("'seeds' repeats a seed")
        return self


class StudyRun(BaseModel):
    """One run of a study: its key (folder name), what it trains, with which overrides and seed."""

    key: str
    label: str
    recipe: str
    overrides: dict[str, Any]
    seed: int | None = None
    config: str  # the run before seeds: runs that differ only in the seed share it
    where: str  # the study-file key that defines it (for errors)

    @property
    def args(self) -> str:
        """The overrides in ARGS spelling (resolver/overrides.py parses it back to the same dict)."""
        return shlex.join(f"--{k}={_scalar(v)}" for k, v in self.overrides.items())


def _scalar(value: Any) -> str:
    if isinstance(value, str):
        return value if yaml.safe_load(value) == value else json.dumps(value)
    return json.dumps(value)


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9._-]+", "-", text.lower()).strip("-")[:64] or "run"


def _loc_key(loc: tuple) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _line(lines: dict[str, int], key: str) -> int | None:
    """The line of a dotted key; for a list item (no key of its own) its first key's; else its parent's."""
    while key:
        if key in lines:
            return lines[key]
        inside = [n for k, n in lines.items() if k.startswith((f"{key}.", f"{key}["))]
        if inside:
            return min(inside)
        parent = re.sub(r"(\[\d+\]|\.[^.\[]+)$", "", key)
        key = parent if parent != key else ""
    return None


def load(path: Path) -> tuple[Study, list[StudyRun]]:
    """The study and its runs, validated; a problem is a UserError naming file, line and key."""
    path = Path(path)
    if not path.is_file():
        raise UserError("study file not found", Where(path, key="STUDY"), "make study STUDY=studies/<name>.yaml")
    data, lines = yamlio.load_with_lines(path)
    if not isinstance(data, dict):
        raise UserError("a study file is a YAML mapping (name, runs or grid, eval, judge, ...)", Where(path, 1))
    try:
        study = Study.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        key = _loc_key(tuple(p for p in err["loc"] if p not in ("function-after",)))
        msg = err["msg"].removeprefix("Value error, ")
        raise UserError(msg, Where(path, _line(lines, key) or 1, key or None)) from None
    study.name = study.name or _slug(path.stem)
    if not SLUG.match(study.name):
        raise UserError(
            "name must be lower-case letters, digits, '.', '_' or '-'", Where(path, lines.get("name"), "name")
        )
    runs = expand(study, path)
    seen: dict[str, str] = {}
    for r in runs:
        if r.key in seen:
            raise UserError(
                f"two runs are both named '{r.key}' ({seen[r.key]} and {r.where})",
                Where(path, _line(lines, r.where), r.where),
                "give one of them a name (name: ...)",
            )
        if r.key in RESERVED or not SLUG.match(r.key):
            raise UserError(f"'{r.key}' cannot name a run", Where(path, _line(lines, r.where), r.where))
        seen[r.key] = r.where
    for r in runs:
        check_recipe(r, path, lines)
    check_judging(study, path, lines)
    return study, runs


def check_judging(study: Study, path: Path, lines: dict[str, int]) -> None:
    """Judge names from eval/judges.yaml and a suite that exists, named with their line."""
    known = yaml.safe_load((REPO / "eval" / "judges.yaml").read_text())
    for i, name in enumerate(study.judge.judges):
        if name not in known:
            key = f"judge.judges[{i}]"
            raise UserError(
                f"unknown judge '{name}'", Where(path, _line(lines, key), key), f"one of: {', '.join(known)}"
            )
    suite = study.judge.suite
    if suite:
        suites = REPO / "eval" / "suites"
        found = (
            (suites / f"{suite}.jsonl").is_file()
            if Path(suite).suffix != ".jsonl"
            else any((base / suite).is_file() for base in (path.parent, REPO))
        )
        if not found:
            names = ", ".join(sorted(p.stem for p in suites.glob("*.jsonl")))
            raise UserError(
                f"judge suite '{suite}' not found",
                Where(path, _line(lines, "judge.suite"), "judge.suite"),
                f"one of: {names}, or a .jsonl file",
            )


def expand(study: Study, path: Path) -> list[StudyRun]:
    """Every run of the study: each listed run (or grid combination) once per seed."""
    base: list[tuple[str, str, dict[str, Any], str]] = []  # (label, recipe, overrides, where)
    if study.runs is not None:
        for i, item in enumerate(study.runs):
            recipe = _recipe_ref(item.recipe, path)
            base.append((item.name or _slug(rundir.recipe_name(item.recipe)), recipe, item.overrides, f"runs[{i}]"))
    else:
        grid = study.grid
        keys = list(grid.over)
        for combo in itertools.product(*(grid.over[k] for k in keys)):
            parts = [
                f"{k.split('.')[-1]}={Path(str(v)).name if k == 'base_model' else v}"
                for k, v in zip(keys, combo, strict=True)
            ]
            label = _slug(f"{rundir.recipe_name(grid.recipe)}-{'-'.join(parts)}")
            base.append((label, _recipe_ref(grid.recipe, path), dict(zip(keys, combo, strict=True)), "grid.over"))
    out = []
    for label, recipe, own, where in base:
        overrides = {**study.overrides, **own}
        for seed in study.seeds or [None]:
            with_seed = {**overrides, **({"seed": seed} if seed is not None else {})}
            key = label if seed is None or len(study.seeds or []) < 2 else f"{label}-seed{seed}"
            out.append(
                StudyRun(key=key, label=label, recipe=recipe, overrides=with_seed, seed=seed, config=label, where=where)
            )
    return out


def _recipe_ref(recipe: str, study_file: Path) -> str:
    """A recipe name as is; a recipe file relative to the study file (or the repo) as an absolute path."""
    if not rundir.is_recipe_file(recipe):
        return recipe
    for base in (study_file.parent, REPO):
        if (base / recipe).is_file():
            return str((base / recipe).resolve())
    return recipe


def check_recipe(r: StudyRun, path: Path, lines: dict[str, int]) -> None:
    from resolver.registry import load_recipe

    key = f"{r.where}.recipe" if r.where.startswith("runs") else "grid.recipe"
    try:
        load_recipe(r.recipe)
    except UserError as exc:
        raise UserError(exc.message, Where(path, _line(lines, key), key), exc.hint) from None


def check_overrides(runs: list[StudyRun], path: Path, cache: Path) -> None:
    """Override keys axolotl does not know (it would drop them silently), named with the closest match. Slow
    (it loads axolotl's schema), so `make study` runs it, not every load."""
    from launch.preflight.schema import unknown_keys

    _, lines = yamlio.load_with_lines(path)
    for r in runs:
        top = {k: v for k, v in r.overrides.items() if "." not in k}
        for key, close in unknown_keys(top, cache):
            where = next(
                (w for w in (f"{r.where}.overrides.{key}", f"overrides.{key}", f"grid.over.{key}") if w in lines),
                r.where,
            )
            raise UserError(
                f"unknown override '{key}'" + (f" (did you mean {', '.join(close)}?)" if close else ""),
                Where(path, _line(lines, where), where),
                "override keys are axolotl config keys (make show prints a recipe's)",
            )
