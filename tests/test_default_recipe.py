"""The embedded default end to end through `make train` (shortened): a run directory whose manifest points
at an adapter that loads with peft, changes the model and generates text."""

from __future__ import annotations

import importlib.metadata as md

import pytest
import torch

from core import manifest, rundir, settings
from core.hashing import sha256_file


@pytest.mark.slow
def test_make_train_default_recipe(default_run, monkeypatch):
    trained, stdout = default_run
    assert "adapter:" in stdout and "next:" in stdout
    monkeypatch.setenv("OUTPUTS", str(trained.parent.parent.parent))
    run = rundir.resolve(settings.load().outputs, recipe="smollm2-135m-cpu")
    assert run == trained
    m = manifest.read(run)
    t = m.train
    assert m.status == "completed" and m.recipe_name == "smollm2-135m-cpu"
    assert len(t.recipe.sha256) == 64 and t.git["sha"]
    assert [(d.path, d.role) for d in t.datasets] == [
        ("data/samples/philosophy_chat.train.jsonl", "train"),
        ("data/samples/philosophy_chat.val.jsonl", "held-out"),
    ]
    assert all(len(d.sha256) == 64 for d in t.datasets) and t.summary.eval_loss is not None
    assert t.packages["axolotl"] == md.version("axolotl") and t.hardware["cpu_count"]
    assert t.started <= t.ended and t.summary.global_step == 3
    assert (run / "config.yaml").is_file() and (run / "logs" / "train.log").stat().st_size > 0
    assert list((run / "output" / "runs").rglob("events.out.tfevents.*")), "no TensorBoard events"

    adapter_dir = rundir.final_adapter(run)
    assert t.final_checkpoint.sha256 == sha256_file(adapter_dir / t.final_checkpoint.file)

    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    base_dir = t.base_model.path
    tok = AutoTokenizer.from_pretrained(adapter_dir)
    assert tok.eos_token == "<|im_end|>" and tok.chat_template
    prompt = tok.apply_chat_template(
        [{"role": "user", "content": "What is wonder?"}],
        add_generation_prompt=True,
        return_tensors="pt",
        return_dict=True,
    )
    base = AutoModelForCausalLM.from_pretrained(base_dir, dtype=torch.float32)
    with torch.no_grad():
        base_logits = base(**prompt).logits
    tuned = PeftModel.from_pretrained(base, adapter_dir)
    with torch.no_grad():
        tuned_logits = tuned(**prompt).logits
        out = tuned.generate(**prompt, max_new_tokens=16, do_sample=False)
    assert not torch.allclose(base_logits, tuned_logits), "the adapter changes nothing"
    text = tok.decode(out[0][prompt["input_ids"].shape[1] :], skip_special_tokens=True)
    assert text.strip(), "no text generated"
