"""Model cards generated from a run's manifest: YAML front matter the Hub understands, then the recipe,
training settings, data hashes, evaluation tables (metrics named and printed by core/metrics.py) and usage
snippets; what differs per export format (library, tags, sections, usage) comes from its registration
(tools/export/formats.py). Never reads the environment."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from core import mdtable, metrics
from core.errors import UserError, Where
from core.manifest import EvalResult, Manifest
from resolver.architecture import facts_for
from tools.export import export_formats as _registered  # noqa: F401 - registers the repo's formats
from tools.export import formats

DROP_FROM_RECIPE = ("output_dir", "dataset_prepared_path")


def _results(m: Manifest) -> list[EvalResult]:
    return m.lm_eval.results if m.lm_eval else []


def _metric_items(r: EvalResult) -> list[tuple[metrics.Metric, float]]:
    """The result's metrics in registry order (unknown names are left out of cards)."""
    return [(metrics.get(k), r.metrics[k]) for k in metrics.BY_NAME if k in r.metrics]


def front_matter(m: Manifest, kind: str, cache: Path) -> dict[str, Any]:
    """The card's YAML header; the base model's licence from its facts (`cache`: AFFINAGE_CACHE keeps fetched
    ones)."""
    fmt = formats.get(kind)
    t = m.train
    base = t.base_model.name
    facts = facts_for(base, cache=cache) or {}
    fm: dict[str, Any] = {
        "base_model": base,
        "library_name": fmt.library,
        "license": facts.get("license") or "other",  # the Hub wants one; a table row may say none
        "tags": ["affinage", "axolotl", t.meta.method, t.meta.family, "text-generation", *fmt.tags],
        "datasets": [d.path for d in t.datasets],
        "pipeline_tag": "text-generation",
    }
    results = _results(m)
    if results:
        fm["model-index"] = [
            {
                "name": t.meta.hub_name or m.recipe_name,
                "results": [
                    {
                        "task": {"type": "text-generation", "name": r.task},
                        "dataset": {"name": r.dataset or r.task, "type": "custom"},
                        "metrics": [
                            {"type": metric.name, "value": value, "name": metric.label}
                            for metric, value in _metric_items(r)
                        ],
                    }
                    for r in results
                ],
            }
        ]
    return fm


def _table(rows: list[tuple[str, Any]]) -> str:
    return "\n".join(mdtable.table(["setting", "value"], [(k, v) for k, v in rows if v is not None]))


def training_rows(m: Manifest, config: dict[str, Any]) -> list[tuple[str, Any]]:
    t = m.train
    s = t.summary
    targets = config.get("lora_target_modules")
    precision = "bf16" if config.get("bf16") else "fp16" if config.get("fp16") else "fp32"
    return [
        ("recipe", f"`{m.recipe_name}` (sha256 {(t.recipe.sha256 or '')[:12]})"),
        ("base model", t.base_model.name),
        ("method", t.meta.method),
        (
            "LoRA r / alpha / dropout",
            f"{config.get('lora_r')} / {config.get('lora_alpha')} / {config.get('lora_dropout')}"
            if config.get("lora_r")
            else None,
        ),
        ("LoRA targets", ", ".join(targets) if isinstance(targets, list) else targets),
        ("epochs / max steps", f"{config.get('num_epochs')} / {config.get('max_steps', '-')}"),
        ("batch", f"{config.get('micro_batch_size')} x {config.get('gradient_accumulation_steps')} accumulation"),
        ("learning rate", f"{config.get('learning_rate')} {config.get('lr_scheduler', '')}"),
        ("sequence length", config.get("sequence_len")),
        ("precision", precision),
        ("device", t.device),
        ("steps trained", s.global_step if s else None),
        ("loss first / final", f"{s.first_loss} / {s.final_loss}" if s else None),
        ("eval loss", s.eval_loss if s else None),
        ("axolotl", t.packages.get("axolotl")),
    ]


def eval_section(m: Manifest) -> str:
    results = _results(m)
    if not results:
        return "Not evaluated yet."
    rows = [(r.task, metric.label, metric.show(value)) for r in results for metric, value in _metric_items(r)]
    return "\n".join(mdtable.table(["task", "metric", "value"], rows))


def render(
    m: Manifest, config: dict[str, Any], kind: str, repo_id: str, modelfile: bool = False, *, cache: Path
) -> str:
    t = m.train
    recipe_cfg = {k: v for k, v in config.items() if k not in DROP_FROM_RECIPE}
    recipe_cfg["base_model"] = t.base_model.name
    fmt = formats.get(kind)
    what = fmt.title
    parts = [
        "---",
        yaml.safe_dump(front_matter(m, kind, cache), sort_keys=False).strip(),
        "---",
        "",
        f"# {t.meta.hub_name or m.recipe_name}",
        "",
        f"{t.meta.description}: {what} of [{t.base_model.name}](https://huggingface.co/{t.base_model.name}), "
        f"trained with the `{m.recipe_name}` recipe (axolotl).",
        "",
        "## Training",
        "",
        _table(training_rows(m, config)),
        "",
        "## Data",
        "",
        "| file | sha256 | bytes |",
        "|---|---|---|",
    ]
    parts += [f"| {mdtable.cell(d.path)} | `{d.sha256}` | {d.bytes} |" for d in t.datasets]
    parts += ["", "## Evaluation", "", eval_section(m), ""]
    parts += fmt.sections(m)
    parts += [
        "## Usage",
        "",
        fmt.usage(m, repo_id, modelfile),
        "",
        "## Recipe",
        "",
        "```yaml",
        yaml.safe_dump(recipe_cfg, sort_keys=False).strip(),
        "```",
        "",
    ]
    return "\n".join(parts)


def load_config(run: Path) -> dict[str, Any]:
    path = run / "config.yaml"
    if not path.is_file():
        raise UserError("the run has no config.yaml (the config it trained with)", Where(path))
    return yaml.safe_load(path.read_text()) or {}
