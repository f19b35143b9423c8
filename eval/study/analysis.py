"""Everything a study report shows, from what is finished: every run's held-out scores with intervals, every
pair of models on the same documents (paired permutation test, Holm), tiers, the difference from each base
model, judge verdicts in both tie readings (or "unusable"), the run-to-run spread of seed repeats (shown per
seed and as a spread, never only averaged), cost, loss curves and the generations side by side."""

from __future__ import annotations

import json
import statistics
from pathlib import Path
from typing import Any

from core import manifest, metrics
from core.errors import UserError
from eval import leaderboard
from eval.judged_io import read_cache
from eval.study import state
from eval.study.job import Job
from eval.study.spec import Study, StudyRun


def _jsonl(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def run_entry(r: StudyRun, job: Job, paths: state.StudyPaths, st: dict[str, Any]) -> dict[str, Any]:
    run = state.run_dir(paths, r)
    done = state.progress(job, run)
    info = st.get("runs", {}).get(r.key, {})
    pods = info.get("pods", [])
    entry: dict[str, Any] = {
        "key": r.key,
        "label": r.label,
        "config": r.config,
        "seed": r.seed,
        "recipe": r.recipe,
        "overrides": r.overrides,
        "run": str(run) if run else None,
        "done": done,
        "status": "done" if all(done.values()) else info.get("status") or ("started" if run else "not started"),
        "error": info.get("error"),
        "cost_usd": sum(p.get("spent_usd", 0.0) for p in pods) if pods else (0.0 if run else None),
        "models": [],
        "judges": {},
        "loss": ([], []),
        "generations": [],
        "verdicts": {},
        "train": {},
    }
    if run is None:
        return entry
    try:
        m = manifest.read(run)
    except UserError:
        return entry
    entry["base"] = m.train.base_model.name if m.train.base_model else ""
    entry["train"] = m.train.summary.model_dump() if m.train.summary else {}
    curves = leaderboard.loss_curves(run)
    entry["loss"] = (curves["train"], curves["eval"])
    if done["eval"]:
        entry["models"] = leaderboard.run_models(run, r.key)
    if m.judge:
        entry["judges"] = m.judge.judges
        entry["agreement"] = m.judge.agreement
        entry["generations"] = _jsonl(run / (m.judge.generations or "judge/generations.jsonl"))
        for name in m.judge.judges:  # both orders' raw verdicts per prompt, for the side-by-side view
            for row in read_cache(run / "judge" / f"{name}.jsonl"):
                slot = entry["verdicts"].setdefault(str(row["item"]), {}).setdefault(name, {})
                slot[row["order"]] = {
                    "label": row.get("label"),
                    "verdict": row.get("verdict"),
                    "reply": row.get("reply"),
                }
    return entry


def seed_spread(entries: list[dict[str, Any]], analysis: dict[str, Any]) -> list[dict[str, Any]]:
    """Per configuration trained with several seeds: each seed's primary score, and the spread between them."""
    scores = {}
    for group in analysis["groups"]:
        scores.update(group["metrics"][metrics.PRIMARY]["scores"])
    out = []
    by_config: dict[str, list[dict]] = {}
    for e in entries:
        if e["seed"] is not None:
            by_config.setdefault(e["config"], []).append(e)
    for config, es in by_config.items():
        per_seed = {e["seed"]: scores.get(f"{e['key']} (hf)") for e in es}
        values = [s["estimate"] for s in per_seed.values() if s]
        if len(values) < 2:
            continue
        widths = [s["ci95"][1] - s["ci95"][0] for s in per_seed.values() if s and s["ci95"][0] == s["ci95"][0]]
        out.append(
            {
                "config": config,
                "seeds": {k: v["estimate"] if v else None for k, v in per_seed.items()},
                "mean": statistics.fmean(values),
                "sd": statistics.stdev(values),
                "range": [min(values), max(values)],
                "doc_ci_width": statistics.fmean(widths) if widths else None,
            }
        )
    return out


def gather(study: Study, runs: list[StudyRun], jobs: dict[str, Job], paths: state.StudyPaths) -> dict[str, Any]:
    st = state.read_state(paths)
    entries = [run_entry(r, jobs[r.key], paths, st) for r in runs]
    models = leaderboard.dedupe([m for e in entries for m in e["models"]])
    heldout = leaderboard.analyze(models) if models else {"groups": [], "model_group": {}, "vs_base": {}}
    return {
        "study": study.name,
        "description": study.description,
        "entries": entries,
        "models": models,
        "heldout": heldout,
        "seeds": seed_spread(entries, heldout),
        "judged": [(e["key"], j, s) for e in entries for j, s in e["judges"].items()],
        "budget": budget(st),
    }


def budget(st: dict[str, Any]) -> dict[str, Any] | None:
    """RUNPOD=1's cap (as the last `make study` had it) and what every pod of the study spent against it."""
    cap = st.get("budget")
    if not cap:
        return None
    pods = [p for e in st.get("runs", {}).values() for p in e.get("pods", [])]
    return {**cap, "spent_usd": round(sum(p.get("spent_usd", 0.0) for p in pods), 4), "pods": len(pods)}
