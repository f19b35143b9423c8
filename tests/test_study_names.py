"""Recipe names may hold dots (`make new` allows them: qwen2.5-05b-a), so every name a study, a run directory or a
resume derives from a recipe is the recipe's own name, never a path stem (which cuts such a name at its first dot:
qwen2.5-05b-a and qwen2.5-05b-b would both be 'qwen2')."""

from __future__ import annotations

import pytest

from core import rundir, settings
from core.errors import UserError
from eval.study import spec
from resolver import registry
from tests.conftest import write_recipe

DOTTED = ("smol.v2-a", "smol.v2-b")


@pytest.fixture
def dotted_recipes(tmp_path, monkeypatch):
    """Two registered recipes whose names hold a dot (recipes/ is a temp folder holding them)."""
    folder = tmp_path / "recipes"
    folder.mkdir()
    for name in DOTTED:
        write_recipe(folder / f"{name}.yaml", "max_steps: 2\n")
    monkeypatch.setattr(registry, "RECIPES", folder)
    return folder


@pytest.mark.parametrize(
    ("recipe", "is_file", "name"),
    [
        ("qwen2.5-05b-a", False, "qwen2.5-05b-a"),
        ("smollm2-135m-cpu", False, "smollm2-135m-cpu"),
        ("my/recipes/qwen2.5-05b-a.yaml", True, "qwen2.5-05b-a"),
        ("/abs/x.v1.yml", True, "x.v1"),
    ],
)
def test_a_recipe_name_is_kept_whole(recipe, is_file, name):
    assert rundir.is_recipe_file(recipe) is is_file
    assert rundir.recipe_name(recipe) == name


def test_runs_of_dotted_recipe_names_are_named_after_them(tmp_path, dotted_recipes, outputs):
    study_file = tmp_path / "dots.yaml"
    study_file.write_text("runs:\n  - {recipe: smol.v2-a}\n  - {recipe: smol.v2-b}\n")
    _, runs = spec.load(study_file)  # two distinct runs, not one duplicate name
    assert [r.key for r in runs] == list(DOTTED) and [r.recipe for r in runs] == list(DOTTED)
    assert registry.load_recipe("smol.v2-a").name == "smol.v2-a"  # what a manifest records
    assert (
        rundir.recipe_runs_dir(settings.load().outputs, "smol.v2-a") == outputs / "runs" / "smol.v2-a"
    )  # where launch.train files it


def test_a_grid_over_a_dotted_recipe_and_a_dotted_recipe_file(tmp_path, dotted_recipes):
    study_file = tmp_path / "grid.yaml"
    study_file.write_text("grid:\n  recipe: smol.v2-a\n  over: {learning_rate: [1.0e-4, 2.0e-4]}\n")
    _, runs = spec.load(study_file)
    assert [r.key for r in runs] == ["smol.v2-a-learning_rate-0.0001", "smol.v2-a-learning_rate-0.0002"]
    own = write_recipe(tmp_path / "mine.v3-c.yaml", "max_steps: 2\n")
    study_file.write_text(f"runs:\n  - {{recipe: {own.name}}}\n  - {{recipe: smol.v2-b}}\n")
    _, runs = spec.load(study_file)
    assert [r.key for r in runs] == ["mine.v3-c", "smol.v2-b"] and runs[0].recipe == str(own.resolve())


def test_resuming_a_run_takes_its_recorded_recipe_when_given_a_dotted_name(dotted_recipes, outputs):
    """`make train RUN=<dir>` with a recipe *name* trains the run's recorded recipe (only a recipe file given again
    replaces it); a dotted name is a name, not a file. The run's preflight then fails on purpose (no dataset), so
    nothing trains, and its hint names the recipe actually checked."""
    from core import manifest
    from core.manifest import RecipeRef, TrainSection
    from launch.train import train

    run = rundir.new_run_dir(settings.load().outputs, "smol.v2-a")
    manifest.create(run, TrainSection(recipe=RecipeRef(name="smol.v2-a")))
    with pytest.raises(UserError) as err:
        train("smol.v2-b", args="--datasets.0.path=data/nope.jsonl", run_dir=str(run), s=settings.load())
    assert "dataset file not found" in str(err.value) and "make check RECIPE=smol.v2-a" in str(err.value)
