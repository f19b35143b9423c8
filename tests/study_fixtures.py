"""A finished study made on disk without training: run directories with the manifest sections, per-document
scores, judge rows (both orders) and answers that the real steps write, with known numbers, so the report's
statistics and its page can be checked fast. The slow tests (tests/test_study_cpu.py) make the real thing."""

from __future__ import annotations

import json
from pathlib import Path

from core import atomic, manifest, metrics, rundir
from core.manifest import (
    BaseModelRef,
    EvalResult,
    FinalCheckpoint,
    JudgeSection,
    LmEvalSection,
    RecipeRef,
    TrainSection,
    TrainSummary,
)
from eval import judge_report
from eval.judge import SUMMARY_KEYS
from eval.verdicts import to_model

STUDY = """name: crafted
description: two configurations, two seeds each, judged by one judge
runs:
  - {name: strong, recipe: smollm2-135m-cpu}
  - {name: weak, recipe: smollm2-135m-cpu, overrides: {learning_rate: 1.0e-5}}
seeds: [1, 2]
eval: {backends: [hf, base], limit: 12}
judge: {judges: [local], suite: brie, limit: 4}
"""
DOCS = [f"doc{i:02d}" for i in range(12)]
BASE = "HuggingFaceTB/SmolLM2-135M-Instruct"


def _rows(values: list[float], who: str) -> list[dict]:
    return [
        {
            "doc": d,
            "doc_id": i,
            "prompt": f"Question {i}?",
            "reference": f"the answer to question {i} is here",
            "prediction": f"{who} says answer {i}",
            "metrics": {m.name: v for m in metrics.per_document()},
        }
        for i, (d, v) in enumerate(zip(DOCS, values, strict=True))
    ]


def judged_rows(key: str, always_a: bool) -> list[dict]:
    """Four prompts, both orders: a judge that prefers the fine-tune, or one that always answers "A"."""
    rows = []
    for i in range(4):
        for order in ("CB", "BC"):
            label = "A" if always_a else ("A" if order == "CB" else "B")
            rows.append(
                {
                    "format": "affinage-judged-v1",
                    "run": key,
                    "judge": "local",
                    "suite": "in_domain/philosophy" if i < 2 else "out_of_domain/coding",
                    "item": f"p#{i}",
                    "prompt": f"Prompt {i}",
                    "order": order,
                    "reply": json.dumps({"winner": label}),
                    "label": label,
                    "verdict": to_model(label, order),
                    "error": None,
                }
            )
    return rows


def make_run(root: Path, key: str, tuned: list[float], base: list[float], always_a: bool) -> Path:
    run = root / key / "runs" / "smollm2-135m-cpu" / "20260101T000000Z"
    (run / "output").mkdir(parents=True)
    (run / "output" / "adapter_model.safetensors").write_bytes(b"x")
    train = TrainSection(
        recipe=RecipeRef(name="smollm2-135m-cpu"),
        base_model=BaseModelRef(name=BASE, path="/nonexistent"),
        status="completed",
        summary=TrainSummary(global_step=4, first_loss=3.9, final_loss=3.5, eval_loss=3.6),
        final_checkpoint=FinalCheckpoint(path="output", file="adapter_model.safetensors", sha256="0" * 64),
    )
    manifest.create(run, train)
    samples = {}
    for backend, values in (("hf", tuned), ("base", base)):
        rel = f"eval/samples/{backend}.jsonl"
        atomic.write_text(run / rel, "".join(json.dumps(r) + "\n" for r in _rows(values, f"{key} {backend}")))
        samples[backend] = rel
    hf = EvalResult(task="t (hf)", backend="hf", metrics={"rouge1": sum(tuned) / len(tuned)})
    base_result = EvalResult(task="t (base)", backend="base", metrics={"rouge1": sum(base) / len(base)})
    lm_eval = LmEvalSection(results=[hf], base=base_result, samples=samples, docs=12, limit=12)
    rows = judged_rows(key, always_a)
    judged = run / "judge" / "local.jsonl"
    atomic.write_text(judged, "".join(json.dumps(r) + "\n" for r in rows))
    gens = [
        {"item": f"p#{i}", "suite": s.split("/")[0], "config": s.split("/")[1], "prompt": f"Prompt {i}"}
        | {"candidate": f"{key} answers prompt {i}", "baseline": f"the base answers prompt {i}"}
        for i, s in enumerate(r["suite"] for r in rows[::2])
    ]
    atomic.write_text(run / "judge" / "generations.jsonl", "".join(json.dumps(g) + "\n" for g in gens))
    e = judge_report.analyze([judged])["files"]["local.jsonl"]
    section = JudgeSection(
        suite="eval/suites/brie.jsonl",
        files=["judge/local.jsonl"],
        judges={"local": {k: e[k] for k in SUMMARY_KEYS} | {"requests": {"failed": 0}}},
        generations="judge/generations.jsonl",
    )
    manifest.write_sections(run, lm_eval=lm_eval, judge=section)
    rundir.mark_latest(run)
    return run


def crafted_study(tmp_path: Path, outputs: Path) -> Path:
    """The study file; its four runs finished under OUTPUTS/studies/crafted/."""
    study = tmp_path / "crafted.yaml"
    study.write_text(STUDY)
    root = outputs / "studies" / "crafted"
    base = [0.10 + 0.01 * (i % 3) for i in range(12)]
    for key, shift, noise, always_a in (
        ("strong-seed1", 0.30, 0.000, False),
        ("strong-seed2", 0.30, 0.004, False),
        ("weak-seed1", 0.05, 0.000, True),
        ("weak-seed2", 0.05, 0.003, True),
    ):
        tuned = [b + shift + noise * (i % 2) for i, b in enumerate(base)]
        make_run(root, key, tuned, base, always_a)
    return study
