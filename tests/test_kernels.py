"""The GPU kernel check (launch/preflight/kernels.py) on every branch, with the machine given to it: which modules
import and which GPUs there are. The resolved GPU configs of the real recipes are checked; `make train` refuses
before any run directory exists; the SDPA fallback is said once and becomes an override; capabilities compare as
numbers; `python -m launch.preflight.kernels` (what make setup runs on a GPU box) fails with what to do."""

from __future__ import annotations

import pytest

from core import settings
from core.errors import UserError
from launch.preflight import kernels
from launch.preflight.kernels import Machine
from resolver.resolve import resolve
from tests.conftest import write_recipe

H100, A100, T4, RTX5090 = ("NVIDIA H100", (9, 0)), ("NVIDIA A100", (8, 0)), ("Tesla T4", (7, 5)), ("RTX 5090", (12, 0))
BRIE = "qwen25-3b-instruct-brie"


def machine(*gpus, missing: tuple[str, ...] = ()) -> Machine:
    return Machine(
        cuda=True, gpus=tuple(gpus), missing=lambda mod: f"ModuleNotFoundError: {mod}" if mod in missing else None
    )


def gpu_config(name: str = BRIE, args: str | None = None):
    return resolve(name, settings.load(), device="gpu", args=args)


def levels(result) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for f in result.findings:
        out.setdefault(f.level, []).append(f.message)
    return out


def test_everything_present_on_an_h100():
    r = gpu_config()
    result = kernels.check(r.config, machine(H100), kernels.fallback_allowed(r), r.recipe.where)
    assert not result.errors and result.overrides == {}
    ok = " ".join(levels(result)["ok"])
    assert "flash_attention_2: flash_attn imports" in ok and "liger_kernel imports" in ok


def test_missing_flash_attn_falls_back_to_sdpa_on_hopper():
    r = gpu_config()
    result = kernels.check(
        r.config, machine(H100, missing=("flash_attn",)), kernels.fallback_allowed(r), r.recipe.where
    )
    assert not result.errors and result.overrides == {"attn_implementation": "sdpa"}
    [warning] = [f for f in result.findings if f.level == "warning"]
    assert "falls back to torch SDPA" in warning.message and warning.where.file == kernels.GPU_PROFILE


def test_no_fallback_where_packed_bf16_sdpa_may_train_on_zero_loss():
    r = gpu_config()  # packing + bf16 auto on an A100 (bf16-capable, before Hopper)
    result = kernels.check(r.config, machine(A100, missing=("flash_attn",)), True, r.recipe.where)
    [error] = result.errors
    assert "0.0 loss" in error.message and "--sample_packing=false" in error.hint and not result.overrides
    unpacked = gpu_config(args="--sample_packing=false")
    assert not kernels.check(unpacked.config, machine(A100, missing=("flash_attn",)), True).errors


def test_a_gpu_too_old_for_flash_attention():
    r = gpu_config()
    result = kernels.check(r.config, machine(T4), True, r.recipe.where)  # flash_attn imports, the GPU is 7.5
    assert not result.errors and result.overrides == {"attn_implementation": "sdpa"}
    text = " ".join(f.message for f in result.findings)
    assert "needs compute capability 8.0, the GPU has 7.5" in text and "bf16: auto -> fp16" in text


def test_the_lowest_capability_of_mixed_gpus_decides():
    assert machine(H100, T4).capability == (7, 5)
    r = gpu_config()
    assert kernels.check(r.config, machine(H100, T4), True).overrides == {"attn_implementation": "sdpa"}


def test_capabilities_compare_as_numbers():
    cfg = {"attn_implementation": "flash_attention_3", "bf16": True}
    assert not kernels.check(cfg, machine(RTX5090), False).errors  # (12, 0) >= (9, 0); "sm_120" < "sm_90"
    [error] = kernels.check(cfg, machine(A100), False).errors
    assert "needs compute capability 9.0, the GPU has 8.0" in error.message


def test_a_recipe_that_sets_flash_attention_itself_gets_no_fallback(tmp_path):
    path = write_recipe(tmp_path / "r.yaml", "attn_implementation: flash_attention_2\n", base=BRIE)
    r = resolve(str(path), settings.load(), device="gpu")
    assert not kernels.fallback_allowed(r)
    [error] = kernels.check(r.config, machine(H100, missing=("flash_attn",)), False, r.recipe.where).errors
    assert error.where.file.endswith("r.yaml") and error.where.line == 2
    assert not kernels.fallback_allowed(gpu_config(args="--attn_implementation=flash_attention_2"))


@pytest.mark.parametrize(
    "args, missing, key, text",
    [
        (None, "liger_kernel", "plugins", "Liger kernels need liger_kernel"),
        (None, "triton", "plugins", "need triton"),
        ("--deepspeed=zero3.json", "deepspeed", "deepspeed", "DeepSpeed need deepspeed"),
        ("--adapter=qlora --load_in_4bit=true", "bitsandbytes", "adapter", "QLoRA / 8-bit loading need bitsandbytes"),
        ("--optimizer=adamw_bnb_8bit", "bitsandbytes", "optimizer", "adamw_bnb_8bit optimizer need bitsandbytes"),
    ],
)
def test_each_kernel_the_config_asks_for_must_import(args, missing, key, text):
    r = gpu_config(args=args)
    result = kernels.check(r.config, machine(H100, missing=(missing,)), True, r.recipe.where)
    [error] = result.errors
    assert text in error.message and error.where.key == key


def test_bf16_true_on_a_gpu_without_bf16():
    cfg = {"bf16": True}
    [error] = kernels.check(cfg, machine(T4), True).errors
    assert "bf16: true needs compute capability 8.0; the GPU has 7.5" in error.message
    assert not kernels.check(cfg, machine(A100), True).errors


def test_require_raises_once_for_everything_and_returns_the_fallback_as_args():
    r = gpu_config()
    with pytest.raises(UserError) as err:
        kernels.require(r, None, machine(A100, missing=("flash_attn", "liger_kernel")))
    text = str(err.value)
    assert "0.0 loss" in text and "liger_kernel" in text and "1 x NVIDIA A100 (compute capability 8.0)" in text
    said = []
    args = kernels.require(r, "--max_steps=3", machine(H100, missing=("flash_attn",)), said.append)
    assert args == {"max_steps": 3, "attn_implementation": "sdpa"} and len(said) == 1
    cpu = resolve(BRIE, settings.load(), device="cpu")
    assert kernels.require(cpu, "--x=1", machine(T4, missing=("flash_attn",))) == "--x=1"
    assert kernels.require(r, None, Machine(cuda=False)) is None  # DEVICE=gpu on a machine without CUDA


def test_make_train_refuses_before_any_run_directory(outputs, monkeypatch, roomy_disk):
    from launch import train as train_mod

    monkeypatch.setenv("DEVICE", "gpu")
    monkeypatch.setattr(kernels, "probe", lambda s: machine(H100, missing=("liger_kernel",)))
    with pytest.raises(UserError, match="Liger kernels need liger_kernel"):
        train_mod.train(BRIE, s=settings.load())
    assert not (outputs / "runs").exists()


def test_setup_check_fails_with_what_to_do(monkeypatch, capsys):
    monkeypatch.setattr(kernels, "probe", lambda s: machine(H100, missing=("flash_attn",)))
    assert kernels.main([]) == 2
    err = capsys.readouterr().err
    assert "GPU fast path is not usable" in err and "FLASH_ATTN=0 make setup" in err
    assert kernels.main(["--no-flash"]) == 0  # SDPA instead: everything else imports
    monkeypatch.setattr(kernels, "probe", lambda s: Machine(cuda=False))
    assert kernels.main([]) == 2 and "torch sees no CUDA device" in capsys.readouterr().out


def test_the_real_import_probe():
    assert kernels.import_error("json") is None
    assert kernels.import_error("no_such_module_affinage").startswith("ModuleNotFoundError")


def test_the_preflight_check_looks_where_the_run_trains():
    r = gpu_config()
    [note] = kernels.check_kernels(r, Machine(cuda=False))
    assert note.level == "ok" and "on the machine that trains" in note.message
    errors = [
        f for f in kernels.check_kernels(r, machine(A100, missing=("deepspeed", "liger_kernel"))) if f.level == "error"
    ]
    assert [e.where.key for e in errors] == ["plugins"]  # no deepspeed asked for by this config: only Liger
    assert kernels.check_kernels(resolve(BRIE, settings.load(), device="cpu"), machine(H100)) == []


def test_make_check_runs_the_kernel_check_and_make_train_says_the_fallback_once(monkeypatch, roomy_disk, capsys):
    from launch.preflight.checks import run_checks

    def kernel_findings(device: str) -> list:
        return [f for f in run_checks(BRIE, settings.load(), device=device)[1] if f.check == "kernels"]

    monkeypatch.setattr(kernels, "probe", lambda s: machine(H100, missing=("flash_attn",)))
    found = kernel_findings("gpu")
    warnings = [f for f in found if f.level == "warning"]
    assert len(warnings) == 1 and "falls back to torch SDPA" in warnings[0].message
    assert not [f for f in found if f.level == "error"] and any("liger_kernel imports" in f.message for f in found)
    assert kernel_findings("cpu") == []  # a CPU run asks for no GPU kernels
    monkeypatch.setattr(kernels, "probe", lambda s: machine(A100, missing=("liger_kernel",)))
    [error] = [f for f in kernel_findings("gpu") if f.level == "error"]
    assert "Liger kernels need liger_kernel" in error.message and error.where.key == "plugins"
    monkeypatch.setattr(kernels, "probe", lambda s: Machine(cuda=False))
    [note] = kernel_findings("gpu")
    assert note.level == "ok" and "on the machine that trains" in note.message
    # make train prints the preflight's warning; require() adds the fallback to ARGS without saying it again
    capsys.readouterr()
    args = kernels.require(gpu_config(), None, machine(H100, missing=("flash_attn",)))
    assert args == {"attn_implementation": "sdpa"} and capsys.readouterr().out == ""
