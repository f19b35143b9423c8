"""The preflight estimate: hand-computed memory for Llama 3.1 8B, fits/does-not-fit for 8B/14B/27B/32B on
24/48/80 GB GPUs, disk, cost, and `make plan`'s refusal with what would fit instead."""

from __future__ import annotations

import pytest

from core import settings
from core.errors import UserError
from launch.preflight import estimate as est
from tests.conftest import run_cli

GIB = 2**30
TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
# the persona seed's settings on the GPU path (recipes/fragments/training/persona.yaml + hardware/gpu.yaml)
PERSONA = {
    "adapter": "lora",
    "lora_r": 64,
    "lora_target_modules": TARGETS,
    "sequence_len": 512,
    "micro_batch_size": 4,
    "gradient_checkpointing": True,
    "liger_fused_linear_cross_entropy": True,
    "attn_implementation": "flash_attention_2",
    "save_total_limit": 3,
}
MODELS = {
    "8B": "meta-llama/Llama-3.1-8B-Instruct",
    "14B": "Qwen/Qwen2.5-14B-Instruct",
    "27B": "google/gemma-3-27b-pt",
    "32B": "Qwen/Qwen3-32B",
}


def mem(size: str, vram: float, config: dict | None = None, strategy: str = "none", world: int = 1) -> est.Memory:
    base = MODELS[size]
    cfg = dict(config or PERSONA)
    if size == "27B":
        cfg["lora_target_modules"] = r".*language_model.*\.(q_proj|k_proj|v_proj|o_proj|gate_proj|up_proj|down_proj)"
    return est.memory(est.model_facts(cfg, base, settings.load().cache), cfg, strategy, world, vram)


def test_llama31_8b_lora_by_hand():
    h, i, layers, vocab, kv = 4096, 14336, 32, 128256, 1024
    params = 2 * vocab * h + layers * (2 * h * h + 2 * h * kv + 3 * h * i + 2 * h) + h
    lora = layers * 64 * ((h + h) + 2 * (h + kv) + (h + h) + 2 * (h + i) + (i + h))
    tokens = 4 * 512
    acts = tokens * (2 * h * layers + 16 * h + 8 * i)
    expected = 1.05 * (params * 2 + lora * 16 + acts) / GIB + 1
    m = mem("8B", 24)
    facts = est.model_facts(PERSONA, MODELS["8B"], settings.load().cache)
    assert (facts.params, facts.trainable) == (params, lora) == (8_030_261_248, 167_772_160)
    assert m.total == pytest.approx(expected, rel=1e-9)
    assert m.total == pytest.approx(20.22, abs=0.01) and m.fits  # 23.5 GiB usable on a 24 GB card


@pytest.mark.parametrize(
    "size, vram, fits",
    [
        ("8B", 24, True),
        ("8B", 48, True),
        ("8B", 80, True),
        ("14B", 24, False),
        ("14B", 48, True),
        ("14B", 80, True),
        ("27B", 24, False),
        ("27B", 48, False),
        ("27B", 80, True),
        ("32B", 24, False),
        ("32B", 48, False),
        ("32B", 80, True),  # the seed trained Qwen3-32B on one A100 80GB
    ],
)
def test_fits_on_one_gpu(size, vram, fits):
    m = mem(size, vram)
    weights_gib = est.model_facts(PERSONA, MODELS[size], settings.load().cache).params * 2 / GIB
    assert m.parts["weights"] == pytest.approx(weights_gib)
    assert m.fits is fits, f"{size} on {vram} GB: {m.total:.1f} GiB"


def test_sharding_and_quantization_make_32b_fit_on_48gb():
    assert not mem("32B", 48).fits
    z3 = mem("32B", 48, strategy="zero3", world=2)
    assert z3.fits and z3.parts["weights"] == pytest.approx(mem("32B", 48).parts["weights"] / 2)
    assert not mem("32B", 48, strategy="ddp", world=2).fits  # data parallel replicates the weights
    qlora = mem("32B", 48, {**PERSONA, "adapter": "qlora", "load_in_4bit": True})
    assert qlora.fits and qlora.parts["weights"] < 0.32 * mem("32B", 48).parts["weights"]


def test_checkpointing_and_fused_loss_shrink_activations():
    no_ckpt = mem("8B", 80, {**PERSONA, "gradient_checkpointing": False, "liger_fused_linear_cross_entropy": False})
    assert no_ckpt.parts["activations"] == pytest.approx(2048 * 32 * (16 * 4096 + 8 * 14336) / GIB)
    assert no_ckpt.parts["logits"] == pytest.approx(2048 * 128256 * 8 / GIB)
    eager = mem("8B", 80, {**PERSONA, "gradient_checkpointing": False, "attn_implementation": "eager"})
    assert eager.parts["activations"] - no_ckpt.parts["activations"] == pytest.approx(2048 * 32 * 4 * 32 * 512 / GIB)


def test_disk_and_cost(monkeypatch):
    facts = est.model_facts(PERSONA, MODELS["8B"], settings.load().cache)
    d = est.disk(facts, PERSONA)
    p = facts.params
    assert d.parts["base model download"] == pytest.approx(p * 2 / 1e9)
    assert d.parts["checkpoints (4 kept at peak)"] == pytest.approx(4 * facts.trainable * 12 / 1e9)
    assert d.parts["GGUF f16 + Q8_0 + Q4_K_M"] == pytest.approx(p * (2 + 1.0625 + 0.606) / 1e9)
    monkeypatch.setenv("PRICE_PER_HOUR", "2.00")
    assert (
        est.gpu("h100", settings.load())["usd_per_hour"] == 2.0
    )  # names are case-insensitive; the price is overridable
    with pytest.raises(UserError, match="GPU type 'Z100' is not in the GPU table"):
        est.gpu("Z100", settings.load())


def test_make_plan_prints_the_launch_and_refuses_what_does_not_fit():
    ok = run_cli("launch.preflight.plan", "qwen3-32b", env={"GPU": "H100", "GPUS": "8"})
    assert ok.returncode == 0, ok.stderr
    assert "FITS" in ok.stdout and "--launcher torchrun -- --standalone --nproc_per_node=8" in ok.stdout
    assert "8 x $2.69/h" in ok.stdout and "network volume" in ok.stdout

    no = run_cli("launch.preflight.plan", "qwen3-32b", env={"GPU": "A40"})
    assert no.returncode == 2 and "DOES NOT FIT" in no.stdout
    assert "would fit: GPUS=2 (ZeRO-3" in no.stdout and "QLoRA" in no.stdout and "GPU=A100-80GB" in no.stdout
    assert "error: qwen3-32b needs ~75 GiB per GPU; A40 has 47.5 usable" in no.stderr

    unknown = run_cli("launch.preflight.plan", "qwen3-32b", env={"GPU": "Z100"})
    assert unknown.returncode == 2 and "gpus.yaml" in unknown.stderr and "Traceback" not in unknown.stderr


def test_the_plan_says_where_its_strategy_has_run_and_what_evaluation_needs():
    from launch.preflight.plan import TESTED, UNTESTED, make_plan, report

    ddp = make_plan("llama31-8b-instruct", settings.load(), "H100", 2)
    text = report(ddp)
    assert ddp.launch.strategy == "ddp" and f"tested: ddp: {TESTED['ddp']}" in text and "NCCL) not yet measured" in text
    fsdp = report(make_plan("llama31-8b-instruct", settings.load(), "H100", 2, strategy="fsdp"))
    assert f"tested: fsdp: {UNTESTED}" in fsdp
    e = ddp.evaluation
    kv = 16 * (256 + 256) * 2 * 32 * (8 * 128) * 2  # batch x tokens x (k, v) x layers x (8 kv heads x 128) x bf16
    assert ddp.model.kv_dim == 1024
    assert e.memory_gib == pytest.approx(1.05 * (ddp.model.params * 2 + kv) / GIB + 1)
    prompts, docs, max_new = ddp.eval_counts
    assert (prompts, max_new) == (9, 256) and docs > 0  # the personas suite, the recipe's sampling
    step = ddp.model.params * 2 / (3350 * 1e9)  # H100: a decode step reads the weights once
    assert e.judge_s == pytest.approx(2 * 1 * max_new * step) and e.lmeval_s == pytest.approx(docs * 128 * step)
    assert "evaluation (after training, on one H100, bf16)" in text and "llama.cpp" in text


def test_the_volume_is_the_disk_estimate_plus_a_fifth_in_tens():
    assert est.volume_gb(8.0) == 10 and est.volume_gb(8.4) == 20 and est.volume_gb(150) == 180


def test_memory_bandwidth_comes_from_the_gpu_table():
    rows = est.gpu_table(None)["gpus"]
    assert all(row["hbm_gb_per_s"] > 0 for row in rows.values()) and rows["H200"]["hbm_gb_per_s"] == 4800
    m = est.Model(params=8e9, trainable=0, quantizable=0, hidden=4096, intermediate=1, layers=32, heads=32, vocab=1)
    assert est.evaluation(m, rows["L4"], 10, 10, 256).bandwidth == 300
    older = {k: v for k, v in rows["L4"].items() if k != "hbm_gb_per_s"}  # a GPU_TABLE copy without the column
    assert est.evaluation(m, older, 10, 10, 256).bandwidth == est.DEFAULT_HBM_GB_PER_S
