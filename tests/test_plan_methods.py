"""The plan is right where a user cannot see it: a LoRA on an 8-bit base is its own method (lora-8bit), sized at 1
byte per quantized base weight, everywhere a method is derived, listed or used; a model whose size is not known
here needs an unknown amount of disk (never 0 GB) and make plan / make runpod-up refuse until its facts are found
(memory cannot be planned without them), and VOLUME_GB sets the volume runpod-up asks for; attention memory
follows the implementation (only eager keeps the seq x seq scores; SDPA, transformers' default, and flash do not),
and so does `auto`'s strategy."""

from __future__ import annotations

import pytest

from core import settings
from core.errors import UserError
from launch.distributed import strategy as dist
from launch.preflight import disk
from launch.preflight import estimate as est
from launch.preflight.plan import make_plan, report
from resolver import table
from resolver.derive import method_of
from resolver.resolve import resolve
from tests.conftest import run_cli, write_recipe
from tests.runpod_server import RunPodServer

GIB = 2**30
LLAMA = "meta-llama/Llama-3.1-8B-Instruct"
UNKNOWN = "google/gemma-3-27b-it"  # in no facts table, in no cache here
PERSONA = {
    "adapter": "lora",
    "lora_r": 64,
    "lora_target_modules": ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
    "sequence_len": 512,
    "micro_batch_size": 4,
    "gradient_checkpointing": True,
    "liger_fused_linear_cross_entropy": True,
    "attn_implementation": "flash_attention_2",
}


def test_the_method_is_derived_from_the_adapter_and_the_base_precision():
    assert method_of({"adapter": "lora", "load_in_8bit": True}) == "lora-8bit"
    assert method_of({"adapter": "lora", "load_in_4bit": True}) == method_of({"adapter": "qlora"}) == "qlora"
    assert method_of({"adapter": "lora"}) == "lora" and method_of({}) == "full"


def test_an_8bit_base_is_sized_at_one_byte_per_quantized_weight():
    m = est.model_facts(PERSONA, LLAMA, settings.load().cache)
    bf16 = est.memory(m, PERSONA, "none", 1, 80).parts["weights"]
    int8 = est.memory(m, {**PERSONA, "load_in_8bit": True}, "none", 1, 80).parts["weights"]
    nf4 = est.memory(m, {**PERSONA, "adapter": "qlora", "load_in_4bit": True}, "none", 1, 80).parts["weights"]
    rest = m.params - m.quantizable  # embeddings, lm_head and norms stay bf16
    assert int8 == pytest.approx((m.quantizable * 1.0 + rest * 2.0) / GIB)
    assert bf16 == pytest.approx(m.params * 2.0 / GIB) and nf4 < int8 < 0.6 * bf16


def test_a_recipe_on_an_8bit_base_is_planned_and_listed_as_lora_8bit(tmp_path, monkeypatch):
    recipe = write_recipe(
        tmp_path / "r.yaml", "meta:\n  method: lora-8bit\nload_in_8bit: true\n", "llama31-8b-instruct"
    )
    plan = make_plan(str(recipe), settings.load(), "H100", 2)
    text = report(plan)
    assert plan.resolved.meta.method == "lora-8bit" and ", lora-8bit) on 1 node(s)" in text, text
    m = plan.model
    assert plan.memory.parts["weights"] == pytest.approx((m.quantizable + (m.params - m.quantizable) * 2) / GIB)
    assert plan.launch.strategy == "ddp" and "LoRA gradients are small" in plan.launch.why
    # a config without a meta block: the table derives the method
    byo = tmp_path / "byo.yaml"
    byo.write_text(
        f"base_model: {LLAMA}\nadapter: lora\nload_in_8bit: true\nlora_r: 16\n"
        "datasets: [{path: data/samples/philosophy_chat.train.jsonl, type: chat_template}]\n"
    )
    monkeypatch.setattr(table, "list_recipes", lambda: [str(byo)])
    [row] = table.rows()
    assert row["method"] == "lora-8bit r16" and row["data"] == "messages"


def test_auto_picks_ddp_for_a_quantized_base_that_fits():
    topo = dist.Topology(device="gpu", nodes=1, procs_per_node=2, source="test")
    assert dist.choose_strategy("auto", topo, "lora-8bit", True)[0] == "ddp"
    assert dist.choose_strategy("auto", topo, "lora-8bit", False)[0] == "zero3"


def byo_unknown(tmp_path):
    path = tmp_path / "unknown.yaml"
    path.write_text(
        f"base_model: {UNKNOWN}\nadapter: lora\nlora_r: 16\n"
        "datasets: [{path: data/samples/philosophy_chat.train.jsonl, type: chat_template}]\n"
    )
    return path


@pytest.mark.parametrize("here", [True, False])
def test_an_unknown_size_is_unknown_never_zero(tmp_path, monkeypatch, here):
    r = resolve(str(byo_unknown(tmp_path)), settings.load(), device="gpu")
    [finding] = disk.check_disk(r, here=here)
    assert finding.level == "warning" and "needs an unknown amount" in finding.message, finding
    assert "0.0 GB" not in finding.message and " 0 GB" not in finding.message
    assert finding.message.endswith("make plan and make runpod-up refuse until its facts are here")
    assert finding.hint.startswith("run make check with network access once")
    monkeypatch.setenv("VOLUME_GB", "150")  # another command's settings: read when it resolves the recipe
    r = resolve(str(byo_unknown(tmp_path)), settings.load(), device="gpu")
    [finding] = disk.check_disk(r, here=here)
    assert "(then runpod-up asks RunPod for VOLUME_GB=150 GB)" in finding.message


def test_runpod_up_refuses_an_unknown_size_and_takes_volume_gb(tmp_path, outputs):
    from launch.cloud.runpod.spec import PodRequest

    with RunPodServer() as rp:
        env = {"RUNPOD_API_BASE_URL": rp.url, "RUNPOD_API_KEY": "rp-fake-key-for-tests-only-0000", "GPU": "H100"}
        env["RECIPE"] = str(byo_unknown(tmp_path))
        refused = run_cli("launch.cloud.commands", "up", "--dry-run", env=env, timeout=300)
        said = refused.stdout + refused.stderr
        assert refused.returncode == 2 and "Traceback" not in said, said[-2000:]
        assert f"no facts for '{UNKNOWN}' here" in said and "run make check with network access once" in said
        assert "volume" not in refused.stdout and rp.state.requests == []
        env["RECIPE"] = "llama31-8b-instruct"
        sized = run_cli("launch.cloud.commands", "up", "--dry-run", env={**env, "VOLUME_GB": "123"})
        assert sized.returncode == 0, sized.stdout + sized.stderr
        assert "volume 123 GB (VOLUME_GB; the plan says" in sized.stdout and "volumeInGb: 123" in sized.stdout
    with pytest.raises(UserError, match="0 GB volume"):
        PodRequest(
            name="x", image_name="i", gpu_type_id="g", gpu_count=1, container_disk_in_gb=40, volume_in_gb=0,
            volume_mount_path="/v", ports="22/tcp", env={},
        )  # fmt: skip


def test_attention_memory_follows_the_implementation():
    m = est.model_facts(PERSONA, LLAMA, settings.load().cache)
    no_ckpt = {**PERSONA, "gradient_checkpointing": False}
    acts = {
        impl: est.memory(m, {**no_ckpt, "attn_implementation": impl}, "none", 1, 80).parts["activations"]
        for impl in ("eager", "sdpa", "flash_attention_2", "flex_attention")
    }
    linear = 2048 * 32 * (16 * 4096 + 8 * 14336) / GIB  # tokens x layers x per-token bytes, no seq^2 term
    assert acts["sdpa"] == acts["flash_attention_2"] == acts["flex_attention"] == pytest.approx(linear)
    assert acts["eager"] - linear == pytest.approx(2048 * 32 * 4 * 32 * 512 / GIB)
    unset = {k: v for k, v in no_ckpt.items() if k != "attn_implementation"}
    assert est.attention_of(unset) == "sdpa" and est.attention_of({**unset, "eager_attention": True}) == "eager"
    assert est.attention_of({**unset, "sdp_attention": True}) == "sdpa"
    assert est.memory(m, unset, "none", 1, 80).parts["activations"] == pytest.approx(linear)


def test_auto_follows_the_attention_implementation():
    long = "--sequence_len=8192 --micro_batch_size=4"
    sdpa = make_plan("llama31-8b-instruct", settings.load(), "A40", 2, args=f"{long} --attn_implementation=sdpa")
    eager = make_plan("llama31-8b-instruct", settings.load(), "A40", 2, args=f"{long} --attn_implementation=eager")
    assert sdpa.launch.strategy == "ddp" and sdpa.memory.fits, report(sdpa)
    assert eager.launch.strategy == "zero3", report(eager)
    assert "sdpa attention, no seq x seq scores stored" in report(sdpa)
    assert "eager attention, seq x seq scores stored" in report(eager)
