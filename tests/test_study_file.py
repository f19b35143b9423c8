"""Study files: the shipped studies load (the seeds' model lists, the CPU study), runs expand (a list, a grid,
seeds), overrides reach launch.train in its own ARGS spelling unchanged, and a bad study file is one error
naming the file, line and key, with exit status 2 and no traceback from the CLI."""

from __future__ import annotations

import pytest

from core.errors import UserError
from core.paths import REPO
from eval.study import spec
from resolver import overrides
from tests.conftest import run_cli

STUDIES = REPO / "studies"


def test_the_shipped_studies_load():
    expected = {
        "personas-phase1": 6,
        "personas-phase2": 3,
        "brie-architectures": 6,  # three architectures x two seeds
        "cpu": 2,
    }
    for name, n in expected.items():
        study, runs = spec.load(STUDIES / f"{name}.yaml")
        assert study.name == name and len(runs) == n, name
    _, runs = spec.load(STUDIES / "personas-phase1.yaml")
    assert {r.recipe for r in runs} == {
        "llama3-8b-instruct",
        "mistral-7b",
        "llama3-8b",
        "mistral-7b-instruct",
        "qwen25-14b",
        "qwen25-14b-instruct",
    }
    _, runs = spec.load(STUDIES / "brie-architectures.yaml")
    assert {r.seed for r in runs} == {42, 43} and len({r.config for r in runs}) == 3


def write(tmp_path, text: str):
    path = tmp_path / "s.yaml"
    path.write_text(text)
    return path


def test_grid_seeds_and_overrides(tmp_path):
    path = write(
        tmp_path,
        "grid:\n  recipe: smollm2-135m-cpu\n  over: {learning_rate: [1.0e-4, 3.0e-4], lora_r: [4, 8]}\n"
        "overrides: {max_steps: 3, lora_target_modules: [q_proj, v_proj], eval_strategy: 'no'}\nseeds: [1, 2]\n",
    )
    study, runs = spec.load(path)
    assert study.name == "s" and len(runs) == 2 * 2 * 2
    assert len({r.key for r in runs}) == 8 and all(r.key.endswith(("-seed1", "-seed2")) for r in runs)
    first = runs[0]
    assert first.overrides == {
        "max_steps": 3,
        "lora_target_modules": ["q_proj", "v_proj"],
        "eval_strategy": "no",
        "learning_rate": 1.0e-4,
        "lora_r": 4,
        "seed": 1,
    }
    assert overrides.parse(first.args) == first.overrides  # what launch.train records is what the study asked


BAD = [
    ("runz: []\n", "Extra inputs are not permitted", 1, "runz"),
    (
        "runs: [{recipe: smollm2-135m-cpu}]\ngrid: {recipe: smollm2-135m-cpu, over: {lora_r: [4]}}\n",
        "not both",
        1,
        None,
    ),
    ("runs:\n  - {recipe: llama31-8b-instrct}\n", "unknown recipe 'llama31-8b-instrct'", 2, "runs[0].recipe"),
    ("runs:\n  - {recipe: smollm2-135m-cpu}\n  - {recipe: smollm2-135m-cpu}\n", "both named", 3, "runs[1]"),
    ("runs: [{recipe: smollm2-135m-cpu}]\nseeds: [42, 42]\n", "repeats a seed", 1, None),
    ("runs: [{recipe: smollm2-135m-cpu}]\neval:\n  backends: [hf, gguff]\n", "'hf' or 'base'", 3, "eval.backends[1]"),
    ("runs: [{recipe: smollm2-135m-cpu}]\neval:\n  limit: 0\n", "greater than or equal to 1", 3, "eval.limit"),
    ("runs: [{recipe: smollm2-135m-cpu}]\njudge:\n  judges: [gpt-5]\n", "unknown judge 'gpt-5'", 3, "judge.judges[0]"),
    ("runs: [{recipe: smollm2-135m-cpu}]\njudge:\n  suite: nope\n", "judge suite 'nope' not found", 3, "judge.suite"),
    ("name: My Study\nruns: [{recipe: smollm2-135m-cpu}]\n", "lower-case", 1, "name"),
    ("grid:\n  recipe: smollm2-135m-cpu\n  over: {}\n", "at least one key", 3, "grid.over"),
    ("runs: [{recipe: smollm2-135m-cpu}]\nbudget:\n  max_cost: -1\n", "greater than 0", 3, "budget.max_cost"),
    ("- smollm2-135m-cpu\n", "a YAML mapping", 1, None),
]


@pytest.mark.parametrize("text,message,line,key", BAD, ids=[b[1][:24] for b in BAD])
def test_a_bad_study_file_names_file_line_and_key(tmp_path, text, message, line, key):
    path = write(tmp_path, text)
    with pytest.raises(UserError) as exc:
        spec.load(path)
    said = str(exc.value)
    assert message in said and f"{path}:{line}" in said, said
    if key:
        assert f"key '{key}'" in said, said


def test_the_cli_refuses_a_bad_study_with_one_line(tmp_path, outputs):
    path = write(tmp_path, "runs:\n  - {recipe: smollm2-135m-cpu}\n  - {name: b, recipe: llama31-8b-instrct}\n")
    for module in ("eval.study.run", "eval.study.report"):
        proc = run_cli(module, str(path), env={"OUTPUTS": str(outputs)})
        assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
        assert f"{path}:3" in proc.stderr and "runs[1].recipe" in proc.stderr and "llama31-8b-instruct" in proc.stderr
    assert not outputs.exists() or not any(outputs.rglob("*"))  # nothing written


def test_an_unknown_override_names_its_line(tmp_path, outputs):
    path = write(tmp_path, "runs: [{recipe: smollm2-135m-cpu}]\noverrides:\n  learning_rat: 1.0e-4\n")
    proc = run_cli("eval.study.run", str(path), env={"OUTPUTS": str(outputs)})
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    assert "unknown override 'learning_rat' (did you mean learning_rate?)" in proc.stderr
    assert f"{path}:3" in proc.stderr and "overrides.learning_rat" in proc.stderr
