"""Merge and GGUF on real runs: merged logits equal peft's unmerged logits (computed here, independently),
Gemma 3 keeps its vision tower, GGUF parity with the HF model passes for f16, and bad input is refused
without leaving anything that looks complete."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors import safe_open

from core import manifest, rundir, settings
from core.errors import UserError
from core.hashing import sha256_file
from core.manifest import RecipeRef, TrainSection
from tests.shared_runs import copy_run
from tools.export import gguf, merge
from tools.tiny_models import llama3_tokenizer_dir

PROMPT = "Ideas are like gardens:"


def logits(model, tok) -> torch.Tensor:
    ids = tok(PROMPT, return_tensors="pt")
    with torch.no_grad():
        return model(**ids).logits.float()


def peft_vs_merged(run, cls_name: str = "AutoModelForCausalLM") -> float:
    import transformers
    from peft import PeftModel
    from transformers import AutoTokenizer

    cls = getattr(transformers, cls_name)
    m = manifest.read(run)
    tok = AutoTokenizer.from_pretrained(run / "merged")
    unmerged = PeftModel.from_pretrained(
        cls.from_pretrained(m.train.base_model.path, dtype=torch.float32), rundir.final_adapter(run)
    )
    merged = cls.from_pretrained(run / "merged", dtype=torch.float32)
    return (logits(unmerged, tok) - logits(merged, tok)).abs().max().item()


@pytest.mark.slow
def test_merge_default_recipe_adapter(default_built):
    run, said = default_built  # `make merge` of the default run, as a user runs it
    section = manifest.read(run).merge
    assert f"next: make gguf RUN={run}" in said["merge"]
    assert section.lora_modules == 210 and section.changed_tensors >= 210
    assert section.chat_template and section.eos_token == "<|im_end|>"
    assert peft_vs_merged(run) < 1e-3
    assert manifest.read(run).merge.files["model.safetensors"] == sha256_file(run / "merged/model.safetensors")
    gen = json.loads((run / "merged/generation_config.json").read_text())
    assert gen["eos_token_id"] == 2


@pytest.mark.slow
def test_merge_gemma3_conditional_generation_keeps_its_vision_tower(family_run, tmp_path):
    run = copy_run(family_run("gemma3-27b", "gemma3"), tmp_path / "outputs")  # the merge writes into the run
    merge.merge(run)
    base_dir = Path(manifest.read(run).train.base_model.path)
    with (
        safe_open(base_dir / "model.safetensors", "pt") as base,
        safe_open(run / "merged/model.safetensors", "pt") as out,
    ):
        names = base.keys()  # a safetensors handle, not a dict
        assert set(names) == set(out.keys())
        vision = [k for k in names if "vision" in k]
        assert vision and all(torch.equal(base.get_tensor(k), out.get_tensor(k)) for k in vision)
        q = next(k for k in names if "language_model" in k and k.endswith("q_proj.weight"))
        assert not torch.equal(base.get_tensor(q), out.get_tensor(q))
    assert json.loads((run / "merged/config.json").read_text())["architectures"] == ["Gemma3ForConditionalGeneration"]
    assert peft_vs_merged(run, "Gemma3ForConditionalGeneration") < 1e-3


@pytest.mark.slow
def test_gguf_of_the_default_recipe(default_built):
    run, said = default_built  # `make gguf QUANTS="Q8_0 Q4_K_M"` after `make merge`, as a user runs them
    section = manifest.read(run).gguf
    assert "parity: pass" in said["gguf"]
    files = section.files
    assert section.parity == "pass" and set(files) == {"f16", "Q8_0", "Q4_K_M"}
    assert files["f16"].prompt_ids_match and files["f16"].agreement == 1.0
    assert section.chat_template and section.eos_token_id == 2
    assert files["f16"].bytes > files["Q8_0"].bytes > files["Q4_K_M"].bytes
    for info in files.values():
        assert info.sha256 == sha256_file(run / "gguf" / info.file)
        assert 0.0 <= info.agreement <= 1.0  # each file was loaded and generated from
    assert manifest.read(run).gguf.parity == "pass"


@pytest.mark.slow
def test_gguf_with_the_real_llama3_tokenizer(tmp_path):
    from axolotl.utils.chat_templates import get_chat_template
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    tok = AutoTokenizer.from_pretrained(llama3_tokenizer_dir())
    tok.chat_template = get_chat_template("llama3")
    tok.eos_token = "<|eot_id|>"
    torch.manual_seed(0)
    model = LlamaForCausalLM(
        LlamaConfig(
            vocab_size=len(tok),
            hidden_size=64,
            intermediate_size=128,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=2,
            bos_token_id=tok.bos_token_id,
            eos_token_id=tok.eos_token_id,
        )
    )
    merged = tmp_path / "merged"
    model.save_pretrained(merged)
    tok.save_pretrained(merged)
    result = gguf.export(merged, tmp_path / "gguf", "tiny-llama3", ["Q8_0", "Q4_K_M"])
    assert result["parity"] == "pass", result["problems"]
    assert result["files"]["f16"]["prompt_ids_match"] and result["chat_template"]
    assert set(result["files"]) == {"f16", "Q8_0", "Q4_K_M"}


def test_unknown_quant_is_refused_before_any_work(tmp_path):
    with pytest.raises(UserError, match="unknown quant type 'Q9_X'") as exc:
        gguf.export(tmp_path, tmp_path / "gguf", "x", ["Q8_0", "Q9_X"])
    assert "Q4_K_M" in exc.value.hint and not (tmp_path / "gguf").exists()


def test_merge_refuses_a_run_without_a_completed_adapter(outputs):
    run = rundir.new_run_dir(settings.load().outputs, "r")
    manifest.create(run, TrainSection(recipe=RecipeRef(name="r"), status="failed"))
    with pytest.raises(UserError, match="did not complete"):
        merge.merge(run)


@pytest.mark.slow
def test_interrupted_merge_leaves_nothing_that_looks_complete(default_run, monkeypatch, tmp_path):
    run = copy_run(default_run[0], tmp_path / "outputs")
    before = manifest.read(run).merge

    def boom(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("transformers.PreTrainedModel.save_pretrained", boom)
    with pytest.raises(OSError):
        merge.merge(run)
    assert manifest.read(run).merge == before  # manifest untouched
    assert not list(run.glob(".merged.*")), "a partial merge folder was left behind"


def test_unrecognized_bpe_pretokenizer_gets_a_clear_message(tmp_path):
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    raw = Tokenizer(models.BPE(unk_token="<unk>"))
    raw.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    corpus = ["the quick brown fox jumps over the lazy dog " * 5, "philosophy begins in wonder " * 5]
    raw.train_from_iterator(corpus, trainers.BpeTrainer(vocab_size=300, special_tokens=["<unk>", "<s>", "</s>"]))
    tok = PreTrainedTokenizerFast(tokenizer_object=raw, bos_token="<s>", eos_token="</s>", unk_token="<unk>")
    model = LlamaForCausalLM(
        LlamaConfig(
            vocab_size=len(tok),
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=1,
            num_attention_heads=2,
            num_key_value_heads=1,
        )
    )
    merged = tmp_path / "merged"
    model.save_pretrained(merged)
    tok.save_pretrained(merged)
    with pytest.raises(UserError, match="does not recognize this tokenizer's BPE pre-tokenizer") as exc:
        gguf.export(merged, tmp_path / "gguf", "bpe", [])
    assert "tokenizer.json" in str(exc.value.where) and "original tokenizer" in exc.value.hint
    assert not (tmp_path / "gguf").exists()


@pytest.mark.slow
def test_parity_fails_an_f16_file_that_really_disagrees(default_built, tmp_path):
    """Teacher-forced parity allows ties (TIE nats) and nothing more: one tensor of the f16 file zeroed makes the
    GGUF choose other tokens, by margins far beyond a tie, and parity fails naming where."""
    from gguf import GGUFReader

    from tools.export import parity

    run, _ = default_built
    good = run / "gguf" / manifest.read(run).gguf.files["f16"].file
    assert parity.compare(run / "merged", {"f16": good}, "f16")["verdict"] == "pass"
    bad = tmp_path / good.name
    bad.write_bytes(good.read_bytes())
    t = next(t for t in GGUFReader(bad).tensors if t.name == "blk.0.attn_q.weight")
    with open(bad, "r+b") as fh:
        fh.seek(int(t.data_offset))
        fh.write(bytes(int(t.n_bytes)))
    report = parity.compare(run / "merged", {"f16": bad}, "f16")
    assert report["verdict"] == "fail" and report["files"]["f16"]["prompt_ids_match"]
    assert any("f16: prompt " in p and "nats below HF's" in p for p in report["problems"]), report["problems"]
