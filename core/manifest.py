"""The run manifest: the one hand-off between pipeline steps, as typed, versioned pydantic models.

A manifest has one section per step. `train` (recipe, data, machine, launch, status, losses, final
checkpoint) is written by training, `resumes` and `ranks` by the launcher, and `merge`, `gguf`, `lm_eval`,
`judge`, `push` by the step of that name. Each step reads the sections it needs and writes only its own, through
`write_sections`, which holds a lock for its read-modify-write: `make eval` and `make judge` on one run at once
keep both sections. Manifests written before the schema had a version (flat keys, an `eval` section holding
lm-eval results and judging) are read through `migrate`.

Records keep fields they do not declare (extra="allow"), so a manifest written by a newer version of a step
loses nothing when an older one rewrites another section. The sections after training live in core/sections.py.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, ValidationError

from core import atomic
from core.errors import UserError, Where

# the section models are part of this module's interface: steps name them as manifest.<Section>
from core.sections import EvalResult as EvalResult
from core.sections import GgufFile as GgufFile
from core.sections import GgufQuality as GgufQuality
from core.sections import (
    GgufSection,
    GrpoRecord,
    JudgeSection,
    LmEvalSection,
    MergeSection,
    PrefsSection,
    PushSection,
    Record,
    RewardStep,
)
from core.sections import PushedRepo as PushedRepo
from core.sections import TrainTelemetry as TrainTelemetry

SCHEMA_VERSION = 2
MANIFEST = "manifest.json"


class RecipeRef(Record):
    name: str
    file: str | None = None
    sha256: str | None = None
    files: list[str] = []


class BaseModelRef(Record):
    name: str
    path: str


class DatasetRef(Record):
    path: str
    role: Literal["train", "held-out"] = "train"
    sha256: str | None = None
    bytes: int | None = None


class Sampling(Record):
    temperature: float = 0.75
    top_p: float | None = None
    max_new_tokens: int = 512


class MetaRecord(Record):
    """What the recipe's meta said (or what was derived for it), as later steps read it."""

    description: str = ""
    family: str | None = None
    params_b: float | None = None
    method: str | None = None
    data_format: str | None = None
    eval_suite: str | None = None
    hub_name: str | None = None
    sampling: Sampling = Sampling()


class TopologyRecord(Record):
    device: str = "cpu"
    nodes: int = 1
    procs_per_node: int = 1
    node_rank: int = 0
    world_size: int = 1


class LaunchRecord(Record):
    strategy: str
    why: str = ""
    argv: list[str] = []
    env: dict[str, str] = {}


class TrainSummary(Record):
    global_step: int | None = None
    first_loss: float | None = None
    final_loss: float | None = None
    first_eval_loss: float | None = None
    eval_loss: float | None = None
    log_history: str | None = None
    # preference runs: rewards/margins (chosen minus rejected reward, beta-scaled log-probability ratios)
    first_margin: float | None = None
    final_margin: float | None = None
    eval_margin: float | None = None
    # GRPO runs: the weighted reward of the first and last logged step, and every logged step's rewards
    first_reward: float | None = None
    final_reward: float | None = None
    rewards: list[RewardStep] = []


class FinalCheckpoint(Record):
    path: str
    file: str
    sha256: str
    bytes: int | None = None


class StartFrom(Record):
    """The run a preference (or any continued) run started from: its merged weights are this run's base model."""

    run: str
    recipe: str
    checkpoint_sha256: str | None = None  # that run's final adapter, as its manifest recorded it
    merged: str | None = None  # the merged folder used as base_model
    prefs: str | None = None  # that run's `make prefs` pairs, when this run trains on them


class PreferenceRecord(Record):
    """How a preference run was set up: the method and what plays the reference model."""

    rl: str
    beta: float | None = None
    reference: str  # "adapter-disabled policy" (LoRA: no second copy) or "second model copy" (full fine-tune)


class TrainSection(Record):
    recipe: RecipeRef
    meta: MetaRecord = MetaRecord()
    base_model: BaseModelRef | None = None
    device: str | None = None
    overrides: dict[str, Any] = {}
    notes: list[str] = []
    datasets: list[DatasetRef] = []
    git: dict[str, Any] = {}
    packages: dict[str, str] = {}
    hardware: dict[str, Any] = {}
    command: list[str] = []
    config: str = "config.yaml"
    status: Literal["running", "failed", "completed"] = "running"
    started: str | None = None
    ended: str | None = None
    returncode: int | None = None
    topology: TopologyRecord = TopologyRecord()
    launch: LaunchRecord | None = None
    summary: TrainSummary | None = None
    final_checkpoint: FinalCheckpoint | None = None
    start_from: StartFrom | None = None
    preference: PreferenceRecord | None = None
    grpo: GrpoRecord | None = None
    telemetry: TrainTelemetry | None = None  # tokens/s, peak memory and MFU the run measured, beside the plan


class ResumeRecord(Record):
    at: str
    from_: str = Field(alias="from")
    step: int


class RanksRecord(Record):
    ranks: list[int]
    identical: bool
    sha256: str
    tensors: int
    saved_adapter_matches: bool | None = None


class Manifest(Record):
    schema_version: int = SCHEMA_VERSION
    train: TrainSection
    resumes: list[ResumeRecord] = []
    ranks: RanksRecord | None = None
    merge: MergeSection | None = None
    gguf: GgufSection | None = None
    lm_eval: LmEvalSection | None = None
    judge: JudgeSection | None = None
    judge_origin: JudgeSection | None = None  # a chained run vs its chain's root base model (eval/chain.py)
    push: PushSection | None = None
    prefs: PrefsSection | None = None

    @property
    def recipe_name(self) -> str:
        return self.train.recipe.name

    @property
    def status(self) -> str:
        return self.train.status


# every field of the manifest but its version is a section: a new step adds its field to Manifest, nothing else
SECTIONS = tuple(name for name in Manifest.model_fields if name != "schema_version")


# keys of a schema-1 manifest that now live in the train section
_V1_TRAIN_KEYS = (
    "recipe",
    "meta",
    "base_model",
    "device",
    "overrides",
    "notes",
    "datasets",
    "git",
    "packages",
    "hardware",
    "command",
    "config",
    "status",
    "started",
    "ended",
    "returncode",
    "topology",
    "launch",
    "final_checkpoint",
)


def migrate(raw: dict[str, Any]) -> dict[str, Any]:
    """A manifest as read from disk, in the current schema's shape (a schema-1 manifest is rearranged)."""
    if raw.get("schema_version", 1) >= SCHEMA_VERSION:
        return raw
    out: dict[str, Any] = {"schema_version": SCHEMA_VERSION}
    train = {k: raw[k] for k in _V1_TRAIN_KEYS if k in raw}
    if isinstance(raw.get("train"), dict):
        train["summary"] = raw["train"]
    out["train"] = train
    for key in ("resumes", "ranks", "merge", "gguf", "push"):
        if key in raw:
            out[key] = raw[key]
    old_eval = raw.get("eval") or {}
    if "results" in old_eval or "lm_eval" in old_eval:
        results = [dict(r, metrics=_bleu_0_1(r.get("metrics") or {})) for r in old_eval.get("results") or []]
        out["lm_eval"] = {"results": results, **(old_eval.get("lm_eval") or {})}
    if old_eval.get("judge"):
        out["judge"] = old_eval["judge"]
    known = {*_V1_TRAIN_KEYS, "train", "resumes", "ranks", "merge", "gguf", "push", "eval", "schema_version"}
    for key, value in raw.items():  # anything else is kept, not dropped
        if key not in known:
            out[key] = value
    return out


def _bleu_0_1(metrics: dict[str, Any]) -> dict[str, Any]:
    """Schema 1 stored sacrebleu's 0-100 BLEU; every metric is 0-1 now (core/metrics.py)."""
    if isinstance(metrics.get("bleu"), (int, float)):
        return {**metrics, "bleu": metrics["bleu"] / 100.0}
    return metrics


def _path(run: Path) -> Path:
    return Path(run) / MANIFEST


def _read_raw(run: Path) -> dict[str, Any]:
    path = _path(run)
    if not path.is_file():
        raise UserError(
            "not a run directory (no manifest.json)",
            Where(run),
            "pass RUN=outputs/runs/<recipe>/<timestamp> or RECIPE=<name>",
        )
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise UserError(f"manifest is not valid JSON: {exc.msg}", Where(path, exc.lineno)) from None
    if not isinstance(raw, dict):
        raise UserError("manifest is not a JSON object", Where(path, 1))
    return migrate(raw)


def _validate(raw: dict[str, Any], path: Path) -> Manifest:
    try:
        return Manifest.model_validate(raw)
    except ValidationError as exc:
        err = exc.errors()[0]
        key = ".".join(str(p) for p in err["loc"])
        raise UserError(
            f"manifest does not match schema {SCHEMA_VERSION}: {err['msg']}",
            Where(path, key=key),
            "the file was edited or cut short; re-run the step that wrote that section",
        ) from None


def read(run: Path) -> Manifest:
    """The run's manifest, validated (old schemas migrated in memory; the file is not rewritten)."""
    return _validate(_read_raw(run), _path(run))


def create(run: Path, train: TrainSection) -> Manifest:
    """The first write of a run's manifest (training's start)."""
    manifest = Manifest(train=train)
    atomic.write_json(_path(run), dump(manifest))
    return manifest


def write_sections(run: Path, **sections: BaseModel | list | None) -> Manifest:
    """Replace the named sections (others are kept as they are on disk), under the run's manifest lock."""
    unknown = set(sections) - set(SECTIONS)
    if unknown:
        raise ValueError(f"not manifest sections: {sorted(unknown)}")
    path = _path(run)
    with atomic.locked(path):
        raw = _read_raw(run)
        for name, value in sections.items():
            if value is None:
                raw.pop(name, None)
            elif isinstance(value, list):
                raw[name] = [v.model_dump(mode="json", by_alias=True) if isinstance(v, BaseModel) else v for v in value]
            else:
                raw[name] = value.model_dump(mode="json", by_alias=True)
        manifest = _validate(raw, path)
        atomic.write_json(path, dump(manifest))
    return manifest


def dump(manifest: Manifest) -> dict[str, Any]:
    return manifest.model_dump(mode="json", by_alias=True, exclude_none=True)
