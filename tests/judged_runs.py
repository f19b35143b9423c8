"""Run directories for judging tests made on disk without training (a manifest with the train section make train
writes, the datasets it names), and a stand-in for eval/generate.py's generators whose answers depend on what
really changes an answer: the model, the seed, and each prompt's settings (the cap on new tokens). Judging,
caching, verdict keys, make prefs and the held-out split run for real on them, with the scripted judge of
tests/openai_server.py."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from core import manifest
from core.manifest import BaseModelRef, DatasetRef, FinalCheckpoint, RecipeRef, StartFrom, TrainSection

BASE = "HuggingFaceTB/SmolLM2-135M-Instruct"


def write_suite(path: Path, n: int) -> Path:
    path.write_text(
        "".join(
            json.dumps({"suite": "s", "config": "c", "prompt": f"Say something new about rain, number {i}."}) + "\n"
            for i in range(n)
        )
    )
    return path


def make_run(
    outputs: Path,
    recipe: str,
    name: str = "20260101-000000",
    datasets: list[str] | None = None,
    start_from: Path | None = None,
    prefs: Path | None = None,
) -> Path:
    run = outputs / "runs" / recipe / name
    run.mkdir(parents=True)
    train = TrainSection(
        recipe=RecipeRef(name=recipe),
        base_model=BaseModelRef(name=BASE, path=str(start_from / "merged") if start_from else "/nonexistent"),
        status="completed",
        final_checkpoint=FinalCheckpoint(path="output", file="adapter_model.safetensors", sha256=recipe[:1] * 64),
        datasets=[DatasetRef(path=d) for d in datasets or []],
        start_from=StartFrom(run=str(start_from), recipe="sft", prefs=str(prefs) if prefs else None)
        if start_from
        else None,
    )
    manifest.create(run, train)
    return run


class FakeGenerator:
    """Answers like eval/generate.py's Generator: text from (model, prompt, seed, cap), and the same record."""

    def __init__(self, model: str, seed: int) -> None:
        self.model, self.seed, self.backend_key = model, seed, "fake:cpu"
        self.asked: list[dict] = []

    def generate_many(self, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        self.asked += items
        out = []
        for item in items:
            words = f"{self.model} says about '{item['prompt']}' with seed {self.seed} many more words".split()
            out.append(
                {
                    "text": " ".join(words[: item["max_tokens"]]),
                    "model": self.model,
                    "backend": self.backend_key,
                    "settings": {k: item[k] for k in ("temperature", "top_p", "max_tokens")},
                    "seed": self.seed,
                }
            )
        return out

    def close(self) -> None:
        pass


def fake_for_run(made: list[FakeGenerator]):
    """eval.judge.for_run's stand-in: the run's model is "Candidate <run>", its baseline "Base"."""

    def for_run(run, seed=0, max_new_tokens=None, baseline=False, baseline_path=None, *, s):
        made.append(FakeGenerator("Base" if baseline else f"Candidate {Path(run).name}", seed))
        return made[-1]

    return for_run


def prefers_candidate(prompt: str) -> str:
    """A scripted judge that reads the responses: the candidate wins in either order."""
    at_a = prompt.split("Response A:\n", 1)[1].split("Response B:", 1)[0]
    return json.dumps({"winner": "A" if at_a.startswith("Candidate") else "B", "reason": "scripted"})


def rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
