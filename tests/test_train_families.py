"""For each architecture family the recipes use, a 2-step axolotl train of the real recipe (its template,
dataset type and LoRA targets) on a tiny random model of that class: the settings run, not only parse."""

from __future__ import annotations

import math

import pytest
from safetensors import safe_open

from core import manifest as run_manifest
from core import rundir, settings
from launch.preflight.checks import run_checks
from resolver.registry import load_recipe
from tests.conftest import SMOKE

CASES = [  # recipe, family, tokenizer of the tiny model
    ("llama32-3b-instruct-brie", "llama", "llama3"),  # chat, llama3 template + <|eot_id|>, real Llama 3.2 tokenizer
    ("mistral-7b", "mistral", "smollm2"),  # prompt/completion
    ("qwen25-3b-instruct-brie", "qwen2", "smollm2"),  # chat, qwen_25 template
    ("qwen3-06b-brie", "qwen3", "smollm2"),  # chat, qwen3 template
    ("gemma3-27b", "gemma3", "smollm2"),  # prompt/completion on Gemma3ForConditionalGeneration, text-only LoRA
]


@pytest.mark.slow
@pytest.mark.parametrize("recipe,family,tokenizer", CASES, ids=[c[0] for c in CASES])
def test_recipe_trains_on_a_tiny_model_of_its_class(recipe, family, tokenizer, tiny_model, family_run):
    model_dir = tiny_model(family, tokenizer)
    args = f"--base_model={model_dir} {SMOKE}"
    _, findings = run_checks(recipe, settings.load(), args)
    assert not [str(f) for f in findings if f.level == "error"]
    meta = load_recipe(recipe).meta
    if meta.data_format == "messages":  # with a local tokenizer the end of turn is checked on real labels
        assert any(f.check == "end of turn" and "tokenized through axolotl" in f.message for f in findings)

    run = family_run(recipe, family, tokenizer)

    manifest = run_manifest.read(run)
    summary = manifest.train.summary
    assert manifest.status == "completed" and (run.parent / rundir.LATEST).read_text().strip() == run.name
    assert summary.global_step == 2
    assert all(math.isfinite(x) for x in (summary.first_loss, summary.final_loss))
    adapter = rundir.final_adapter(run) / "adapter_model.safetensors"
    with safe_open(adapter, "pt") as fh:
        names = fh.keys()  # a safetensors handle, not a dict
    modules = {k.split(".lora_A")[0] for k in names if ".lora_A" in k}
    suffixes = {m.rsplit(".", 1)[1] for m in modules}
    assert suffixes == {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"}
    assert len(modules) == 2 * 7  # every projection of both layers
    if family == "gemma3":
        assert all("language_model" in m for m in modules) and not any("vision" in m for m in modules)
