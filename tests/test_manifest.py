"""The typed run manifest (core/manifest.py): a round trip keeps every section, a manifest written by the code
before the schema had a version still loads (tests/fixtures/manifest_v1.json is one, written by that code), each
step writes only its own section, and two steps writing at once keep both sections (a lock, not luck)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from core import manifest, rundir, settings
from core.errors import UserError
from core.manifest import (
    BaseModelRef,
    EvalResult,
    GgufFile,
    GgufSection,
    JudgeSection,
    LmEvalSection,
    MergeSection,
    PushedRepo,
    PushSection,
    RecipeRef,
    ResumeRecord,
    TrainSection,
)
from core.paths import REPO

V1 = Path(__file__).with_name("fixtures") / "manifest_v1.json"


def a_train_section() -> TrainSection:
    return TrainSection(
        recipe=RecipeRef(name="r", file="recipes/r.yaml", sha256="0" * 64, files=["recipes/r.yaml"]),
        base_model=BaseModelRef(name="org/m", path="/models/m"),
        status="running",
        started="t0",
    )


def test_round_trip_keeps_every_section(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    manifest.create(run, a_train_section())
    sections = {
        "resumes": [ResumeRecord(at="t1", from_="output/checkpoint-2", step=2)],
        "merge": MergeSection(path="merged", dtype="float32", files={"model.safetensors": "a" * 64}),
        "gguf": GgufSection(
            path="gguf", files={"f16": GgufFile(file="m-f16.gguf", bytes=10, agreement=1.0)}, parity="pass"
        ),
        "lm_eval": LmEvalSection(
            results=[EvalResult(task="t (hf)", backend="hf", metrics={"rouge1": 0.5, "bleu": 0.25})]
        ),
        "judge": JudgeSection(suite="eval/suites/brie.jsonl", judges={"local": {"n": 3, "wins": 1}}),
        "push": PushSection(repo="me/x", complete=True, repos={"adapter": PushedRepo(repo_id="me/x", commit="c0ffee")}),
    }
    for name, value in sections.items():
        manifest.write_sections(run, **{name: value})
    m = manifest.read(run)
    assert m.schema_version == manifest.SCHEMA_VERSION and m.recipe_name == "r" and m.status == "running"
    assert (
        m.resumes[0].from_ == "output/checkpoint-2"
        and json.loads((run / "manifest.json").read_text())["resumes"][0]["from"]
    )
    assert m.merge == sections["merge"] and m.gguf == sections["gguf"] and m.lm_eval == sections["lm_eval"]
    assert m.judge == sections["judge"] and m.push == sections["push"]
    # a field a newer step wrote is kept when another step rewrites its own section
    raw = json.loads((run / "manifest.json").read_text())
    raw["merge"]["written_by_a_newer_version"] = 7
    (run / "manifest.json").write_text(json.dumps(raw))
    manifest.write_sections(run, push=sections["push"].model_copy(update={"at": "t9"}))
    assert json.loads((run / "manifest.json").read_text())["merge"]["written_by_a_newer_version"] == 7


def test_a_manifest_written_before_the_schema_had_a_version_still_loads(tmp_path):
    raw = json.loads(V1.read_text())
    assert "schema_version" not in raw and raw["status"] == "completed" and "eval" in raw  # really the old shape
    run = tmp_path / "run"
    run.mkdir()
    shutil.copy(V1, run / "manifest.json")
    m = manifest.read(run)
    assert m.recipe_name == raw["recipe"]["name"] and m.status == "completed"
    assert m.train.final_checkpoint.sha256 == raw["final_checkpoint"]["sha256"]
    assert m.train.summary.global_step == raw["train"]["global_step"]
    assert m.train.topology.world_size == raw["topology"]["world_size"] and m.ranks.identical
    assert m.train.launch.strategy == raw["launch"]["strategy"]
    assert m.merge.files == raw["merge"]["files"] and set(m.gguf.files) == set(raw["gguf"]["files"])
    old = raw["eval"]["results"][0]["metrics"]
    new = m.lm_eval.results[0].metrics
    assert new["bleu"] == pytest.approx(old["bleu"] / 100) and new["rouge1"] == old["rouge1"]  # BLEU 0-100 -> 0-1
    assert m.lm_eval.version == raw["eval"]["lm_eval"]["version"]
    assert m.judge.judges == raw["eval"]["judge"]["judges"]
    assert m.push.repos["adapter"].commit == raw["push"]["repos"]["adapter"]["commit"]
    assert (run / "manifest.json").read_bytes() == V1.read_bytes()  # reading never rewrites the file
    manifest.write_sections(run, push=m.push)  # the first write stores the current schema
    assert json.loads((run / "manifest.json").read_text())["schema_version"] == manifest.SCHEMA_VERSION


def test_a_broken_manifest_names_the_file_and_key(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "manifest.json").write_text(
        json.dumps({"schema_version": 2, "train": {"recipe": {"name": "r"}, "status": "half-done"}})
    )
    with pytest.raises(UserError) as exc:
        manifest.read(run)
    assert "manifest.json" in str(exc.value) and exc.value.where.key == "train.status"
    with pytest.raises(ValueError, match="not manifest sections"):
        manifest.write_sections(run, eval={})


WRITER = """
import sys
from core import manifest
from core.manifest import JudgeSection, LmEvalSection, EvalResult
run, which, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
for i in range(n):
    if which == "lm_eval":
        manifest.write_sections(run, lm_eval=LmEvalSection(results=[EvalResult(task="t", backend="hf", metrics={"rouge1": i})]))
    else:
        manifest.write_sections(run, judge=JudgeSection(judges={"local": {"n": i}}))
"""


def test_two_steps_writing_at_once_keep_both_sections(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    manifest.create(run, a_train_section())
    env = {"PYTHONPATH": str(REPO)}
    procs = [
        subprocess.Popen([sys.executable, "-c", WRITER, str(run), which, "60"], cwd=REPO, env=env)
        for which in ("lm_eval", "judge")
    ]
    assert [p.wait(timeout=120) for p in procs] == [0, 0]
    m = manifest.read(run)
    assert m.lm_eval.results[0].metrics["rouge1"] == 59 and m.judge.judges["local"]["n"] == 59
    assert m.train.recipe.name == "r"


def test_the_run_resolver(tmp_path, monkeypatch):
    monkeypatch.setenv("OUTPUTS", str(tmp_path))
    with pytest.raises(UserError, match="has no completed run yet"):
        rundir.resolve(settings.load().outputs, recipe="smollm2-135m-cpu")
    run = rundir.new_run_dir(settings.load().outputs, "smollm2-135m-cpu")
    manifest.create(run, a_train_section())
    rundir.mark_latest(run)
    assert rundir.resolve(settings.load().outputs, recipe="smollm2-135m-cpu") == run
    assert (
        rundir.resolve(settings.load().outputs, recipe=str(REPO / "recipes" / "smollm2-135m-cpu.yaml")) == run
    )  # a recipe file: its stem
    assert rundir.resolve(settings.load().outputs, run=str(run)) == run
    with pytest.raises(UserError, match="no run given"):
        rundir.resolve(settings.load().outputs)
