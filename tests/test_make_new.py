"""`make new`: a recipe from MODEL + DATA alone, for an architecture none of the repo's recipes uses (a tiny
random Granite, built here, with SmolLM2's real tokenizer and chat template). The written recipe takes its template,
end of turn and LoRA targets from the model's own files and module tree and its GPU from the plan; it passes
`make check`, trains 2 steps on CPU, merges and converts to GGUF with parity. An architecture llama.cpp's converter
lacks (OPT) gets the preflight's warning that `make gguf` will refuse it, before any GPU time."""

from __future__ import annotations

import pytest
import yaml

from core import manifest, rundir, settings
from core.paths import REPO
from tests.conftest import SMOKE, run_cli

DATA = "data/samples/philosophy_chat.train.jsonl"
HELDOUT = "data/samples/philosophy_chat.val.jsonl"


@pytest.mark.slow
def test_make_new_writes_a_recipe_that_checks_trains_merges_and_converts(tmp_path, monkeypatch):
    from tools.tiny_models import build

    model = build("granite", tmp_path / "granite-tiny", cache=settings.load().cache)
    recipe = tmp_path / "granite-tiny.yaml"
    env = {
        "RECIPE": "granite-tiny",
        "MODEL": str(model),
        "DATA": DATA,
        "HELDOUT": HELDOUT,
        "OUT": str(recipe),
        "OUTPUTS": str(tmp_path / "out"),
    }
    new = run_cli("launch.new", env=env, timeout=600)
    said = new.stdout + new.stderr
    assert new.returncode == 0 and "OK: 0 errors" in said, said[-4000:]
    written = yaml.safe_load(recipe.read_text())
    assert "meta" in written and {"description", "gpu"} <= set(written["meta"]) and "family" not in written["meta"]
    assert written["chat_template"] == "tokenizer_default" and "eot_tokens" not in written  # eos is the turn end
    assert set(written["lora_target_modules"]) == {
        "q_proj",
        "k_proj",
        "v_proj",
        "o_proj",
        "gate_proj",
        "up_proj",
        "down_proj",
    }
    assert written["datasets"][0]["type"] == "chat_template" and written["test_datasets"][0]["path"] == HELDOUT
    assert "family granite (config.json model_type)" in said and "[ok] gguf: llama.cpp's converter supports" in said

    env = {"OUTPUTS": str(tmp_path / "out"), "RECIPE": ""}
    train = run_cli("launch.train", str(recipe), f"--args={SMOKE}", env=env, timeout=900)
    assert train.returncode == 0, train.stdout[-3000:] + train.stderr[-3000:]
    monkeypatch.setenv("OUTPUTS", env["OUTPUTS"])
    run = rundir.latest_run(settings.load().outputs, str(recipe))
    m = manifest.read(run)
    assert m.status == "completed" and m.train.meta.family == "granite" and m.train.meta.method == "lora"
    merge = run_cli("tools.export.merge", f"--run={run}", env=env, timeout=600)
    assert merge.returncode == 0, merge.stdout[-2000:] + merge.stderr[-2000:]
    gguf = run_cli("tools.export.gguf", f"--run={run}", "--quants=Q8_0", env=env, timeout=900)
    assert gguf.returncode == 0 and "parity: pass" in gguf.stdout, gguf.stdout[-2000:] + gguf.stderr[-2000:]
    assert manifest.read(run).gguf.parity == "pass"


@pytest.mark.slow
def test_an_architecture_llama_cpp_lacks_is_said_before_training(tmp_path):
    from tools.tiny_models import build

    model = build("opt", tmp_path / "opt-tiny", ffn_dim=128, word_embed_proj_dim=64, cache=settings.load().cache)
    env = {
        "RECIPE": "opt-tiny",
        "MODEL": str(model),
        "DATA": DATA,
        "OUT": str(tmp_path / "opt-tiny.yaml"),
        "OUTPUTS": str(tmp_path / "out"),
    }
    new = run_cli("launch.new", env=env, timeout=600)
    said = new.stdout + new.stderr
    assert new.returncode == 0, said[-3000:]
    assert "does not support OPTForCausalLM: make gguf will refuse this model" in said
    assert (REPO / "recipes" / "opt-tiny.yaml").exists() is False  # OUT= kept it out of the repo
