"""A `meta` block documents and overrides what is derived, but never contradicts it: a family that is not config.json's
model_type, a params_b more than 25 % from the parameters counted on the meta device, a method the adapter keys do
not give, a data format the dataset type does not read. Each is an error of make check naming the key (file and
line) and both values; what ARGS or a later file (a recipe extending another) change is derived again, not a
contradiction; the shipped recipes have none."""

from __future__ import annotations

import pytest

from core import settings
from resolver import derive
from resolver.meta import Meta
from resolver.registry import list_recipes, load_recipe
from tests.conftest import write_recipe

QWEN = "Qwen/Qwen2.5-0.5B-Instruct"  # config.json model_type qwen2, 0.494 B parameters (the offline facts table)
SFT = {"adapter": "lora", "datasets": [{"path": "x.jsonl", "type": "chat_template"}]}


def said(meta: dict, config: dict | None = None) -> dict[str, tuple]:
    found = derive.contradictions(Meta(**meta), config or SFT, QWEN, settings.load().cache)
    return {key: (stated, derived) for key, stated, derived, _ in found}


def test_each_derivable_field_is_compared():
    assert said({"family": "qwen2", "params_b": 0.49, "method": "lora", "data_format": "messages"}) == {}
    assert said({"family": "phi"}) == {"meta.family": ("phi", "qwen2")}
    assert said({"params_b": 4.94}) == {"meta.params_b": (4.94, 0.494)}  # ten times off
    assert said({"method": "qlora"}) == {"meta.method": ("qlora", "lora")}
    assert said({"method": "lora"}, {**SFT, "load_in_8bit": True}) == {"meta.method": ("lora", "lora-8bit")}
    assert said({"data_format": "prompt-completion"}) == {"meta.data_format": ("prompt-completion", "messages")}
    dpo = {"rl": "dpo", "datasets": [{"path": "x.jsonl", "type": "chat_template.default"}]}
    assert said({"data_format": "pairs-chat"}, dpo) == {"meta.data_format": ("pairs-chat", "pairs-messages")}


@pytest.mark.parametrize("params_b, contradicts", [(0.38, False), (0.61, False), (0.36, True), (0.63, True)])
def test_params_b_is_allowed_a_quarter_either_way(params_b, contradicts):
    assert derive.PARAMS_TOLERANCE == 0.25
    assert ("meta.params_b" in said({"params_b": params_b})) is contradicts


def test_no_facts_no_model_comparison():
    assert (
        derive.contradictions(Meta(family="phi", params_b=99), SFT, "nobody/unknown-model", settings.load().cache) == []
    )


@pytest.mark.parametrize("name", list_recipes())
def test_the_shipped_recipes_contradict_nothing(name):
    r = load_recipe(name)
    base = r.config["base_model"]
    assert derive.contradictions(r.meta, r.config, base, settings.load().cache) == [], name


def test_make_check_names_the_key_line_and_both_values(tmp_path, roomy_disk):
    from launch.preflight.checks import errors_of, run_checks

    recipe = write_recipe(tmp_path / "r.yaml", "meta:\n  family: phi\n  params_b: 4.9\n", "qwen25-05b-instruct-brie")
    errors = [f for f in errors_of(run_checks(str(recipe), settings.load())[1]) if f.check == "meta"]
    text = "\n".join(map(str, errors))
    assert len(errors) == 1, text  # the family is a cheap check: its error stops the preflight before the count
    assert (
        "r.yaml:3, key 'meta.family': meta.family says 'phi', but 'qwen2' is derived (config.json model_type)" in text
    )
    sized = write_recipe(tmp_path / "s.yaml", "meta:\n  params_b: 4.9\n", "qwen25-05b-instruct-brie")
    errors = [
        f for f in errors_of(run_checks(str(sized), settings.load())[1]) if f.check == "meta"
    ]  # counted on the module tree
    text = "\n".join(map(str, errors))
    assert len(errors) == 1, text
    assert "s.yaml:3, key 'meta.params_b': meta.params_b says 4.9, but 0.494 is derived" in text and "25% apart" in text
    # ARGS that change the model derive family and size again: not a contradiction of the recipe
    _, findings = run_checks(str(recipe), settings.load(), args="--base_model=Qwen/Qwen3-0.6B")
    assert not [f for f in findings if f.check == "meta"], "\n".join(map(str, findings))


def test_a_later_file_that_changes_the_facts_derives_them_again(tmp_path, roomy_disk):
    """Extending a recipe and changing its model or adapter: the inherited meta no longer describes it, so it is
    derived again; the same file stating a contradiction is an error."""
    from launch.preflight.checks import errors_of, run_checks
    from resolver.resolve import resolve

    changed = write_recipe(
        tmp_path / "a.yaml", "load_in_8bit: true\nbase_model: Qwen/Qwen3-0.6B\n", "qwen25-05b-instruct-brie"
    )
    r = resolve(str(changed), settings.load(), device="gpu")
    assert (r.meta.method, r.meta.family, r.meta.params_b) == ("lora-8bit", "qwen3", 0.596), r.notes
    assert not [f for f in run_checks(str(changed), settings.load())[1] if f.check == "meta"]
    stated = write_recipe(
        tmp_path / "b.yaml", "meta:\n  method: lora\nload_in_8bit: true\n", "qwen25-05b-instruct-brie"
    )
    text = "\n".join(str(f) for f in errors_of(run_checks(str(stated), settings.load())[1]) if f.check == "meta")
    assert "b.yaml:3, key 'meta.method': meta.method says 'lora', but 'lora-8bit' is derived" in text, text
