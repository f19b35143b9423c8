"""The GPU fast path, checked on the machine that trains, before any run directory exists: everything the resolved
config asks for must import and fit the GPUs. flash-attention (FA2 needs compute capability 8.0, FA3 9.0), Liger
and axolotl's LoRA kernels (triton), DeepSpeed, bitsandbytes for QLoRA/8-bit, and bf16 (8.0). Capabilities are
(major, minor) tuples compared as numbers: (12, 0) > (8, 0), where the strings "sm_120" < "sm_80".

When flash-attention is missing or the GPU is too old for it, and the recipe allows it (the attention came from
the GPU profile, recipes/fragments/hardware/gpu.yaml, not from the recipe or ARGS), the run falls back to torch's
SDPA, said once; except where axolotl itself warns that packing with SDPA in bf16 may train on a 0.0 loss (before
Hopper), which is an error with what to do. `python -m launch.preflight.kernels` is the same check for the
whole GPU profile, run by `make setup` on a GPU box: it ends in a working fast path or fails with what to do.

What the machine has is a `Machine` (probe() reads the real one); tests pass their own to reach every branch."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from core import cli
from core.errors import UserError, Where
from core.settings import Settings
from launch.preflight.findings import Finding

LIGER = "axolotl.integrations.liger.LigerPlugin"
GPU_PROFILE = "recipes/fragments/hardware/gpu.yaml"
# attn_implementation -> (module that must import, minimum compute capability)
FLASH = {"flash_attention_2": ("flash_attn", (8, 0)), "flash_attention_3": ("flash_attn_interface", (9, 0))}
BF16_MIN = (8, 0)
HOPPER = (9, 0)
SETUP_HINT = (
    "install a flash-attn wheel built for this torch/CUDA/Python (github.com/Dao-AILab/flash-attention/releases) "
    "into .venv and run make setup again, or FLASH_ATTN=0 make setup to train with torch SDPA"
)


def import_error(module: str) -> str | None:
    """Why `module` does not import here (a missing package, a CUDA/ABI mismatch), or None when it does."""
    try:
        importlib.import_module(module)
    except Exception as exc:  # noqa: BLE001 - any import failure (ImportError, OSError of a .so, RuntimeError)
        return f"{type(exc).__name__}: {exc}".splitlines()[0][:300]
    return None


@dataclass(frozen=True)
class Machine:
    """What this machine offers: CUDA, each GPU's (name, (major, minor)), and which modules import."""

    cuda: bool
    gpus: tuple[tuple[str, tuple[int, int]], ...] = ()
    missing: Callable[[str], str | None] = field(default=import_error, compare=False)

    @property
    def capability(self) -> tuple[int, int] | None:
        """The lowest compute capability of the GPUs (every rank must run the same kernels)."""
        return min((cc for _, cc in self.gpus), default=None)

    def describe(self) -> str:
        names = sorted({f"{n} (compute capability {cc[0]}.{cc[1]})" for n, cc in self.gpus})
        return f"{len(self.gpus)} x " + ", ".join(names) if self.gpus else "no CUDA device"


def probe(s: Settings) -> Machine:
    from resolver.profiles import cuda_available

    if not cuda_available(s):
        return Machine(cuda=False)
    import torch

    gpus = tuple(
        (torch.cuda.get_device_name(i), tuple(torch.cuda.get_device_capability(i)))
        for i in range(torch.cuda.device_count())
    )
    return Machine(cuda=True, gpus=gpus)  # type: ignore[arg-type]


@dataclass
class Result:
    findings: list[Finding]
    overrides: dict[str, Any] = field(default_factory=dict)  # the SDPA fallback, as ARGS keys

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.level == "error"]


def _cc(cc: tuple[int, int]) -> str:
    return f"{cc[0]}.{cc[1]}"


def _attention(config: dict[str, Any], m: Machine, allow_fallback: bool, where: Where | None) -> Result:
    impl = config.get("attn_implementation") or ("flash_attention_2" if config.get("flash_attention") else None)
    if impl not in FLASH:
        return Result([])
    module, need = FLASH[impl]
    cc = m.capability
    why = m.missing(module)
    if why is None and cc is not None and cc < need:
        why = f"{impl} needs compute capability {_cc(need)}, the GPU has {_cc(cc)}"
    if why is None:
        return Result([Finding("ok", "kernels", f"{impl}: {module} imports and fits the GPU")])
    if not allow_fallback:
        return Result(
            [
                Finding(
                    "error",
                    "kernels",
                    f"the recipe asks for {impl}, which cannot run here ({why})",
                    where,
                    SETUP_HINT.replace("to train with torch SDPA", "and set attn_implementation: sdpa in the recipe"),
                )
            ]
        )
    bf16 = config.get("bf16") is True or (config.get("bf16") == "auto" and cc is not None and cc >= BF16_MIN)
    if config.get("sample_packing") and bf16 and (cc is None or cc < HOPPER):
        return Result(
            [
                Finding(
                    "error",
                    "kernels",
                    f"{impl} cannot run here ({why}), and its fallback, torch SDPA with sample packing in bf16, "
                    f"may train on a 0.0 loss on GPUs before Hopper (axolotl's own warning)",
                    where,
                    SETUP_HINT.replace(
                        "FLASH_ATTN=0 make setup to train with torch SDPA", "ARGS='--sample_packing=false'"
                    ),
                )
            ]
        )
    note = (
        f"{impl} is not usable here ({why}): attention falls back to torch SDPA (slower; samples in a packed "
        "row still attend only to themselves)"
    )
    overrides: dict[str, Any] = {"attn_implementation": "sdpa"}
    if config.get("flash_attention"):
        overrides["flash_attention"] = None
    return Result([Finding("warning", "kernels", note, where, SETUP_HINT)], overrides)


def needed_modules(config: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(module, what asks for it, config key) beyond attention."""
    out = []
    if LIGER in (config.get("plugins") or []) or any(v for k, v in config.items() if k.startswith("liger_")):
        out += [("liger_kernel", "Liger kernels", "plugins"), ("triton", "Liger kernels", "plugins")]
    kernels = [k for k in ("lora_mlp_kernel", "lora_qkv_kernel", "lora_o_kernel") if config.get(k)]
    if kernels:
        out.append(("triton", "axolotl's LoRA kernels", kernels[0]))
    if config.get("deepspeed"):
        out.append(("deepspeed", "DeepSpeed", "deepspeed"))
    if config.get("adapter") == "qlora" or config.get("load_in_4bit") or config.get("load_in_8bit"):
        key = "adapter" if config.get("adapter") == "qlora" else "load_in_4bit"
        out.append(("bitsandbytes", "QLoRA / 8-bit loading", key))
    if "bnb" in str(config.get("optimizer") or "") or "8bit" in str(config.get("optimizer") or ""):
        out.append(("bitsandbytes", f"the {config['optimizer']} optimizer", "optimizer"))
    seen, unique = set(), []
    for item in out:
        if item[0] not in seen:
            seen.add(item[0])
            unique.append(item)
    return unique


def check(
    config: dict[str, Any], m: Machine, allow_fallback: bool = True, where: Callable[[str], Where] | None = None
) -> Result:
    """What this machine cannot run of `config` (errors), the SDPA fallback (a warning and overrides), the rest ok."""
    at = where or (lambda key: Where(key=key))
    if not m.cuda:
        return Result(
            [Finding("error", "kernels", "torch sees no CUDA device", None, "a CPU build of torch? see make setup")]
        )
    result = _attention(config, m, allow_fallback, at("attn_implementation"))
    for module, why, key in needed_modules(config):
        err = m.missing(module)
        if err:
            hint = "make setup installs it (axolotl's dependencies); on axolotl's image it is part of the image"
            result.findings.append(
                Finding("error", "kernels", f"{why} need {module}, which does not import: {err}", at(key), hint)
            )
        else:
            result.findings.append(Finding("ok", "kernels", f"{why}: {module} imports"))
    cc = m.capability
    bf16 = config.get("bf16")
    if bf16 is True and cc is not None and cc < BF16_MIN:
        result.findings.append(
            Finding(
                "error",
                "kernels",
                f"bf16: true needs compute capability {_cc(BF16_MIN)}; the GPU has {_cc(cc)}",
                at("bf16"),
                "bf16: auto trains in fp16 on this GPU",
            )
        )
    elif bf16 == "auto" and cc is not None and cc < BF16_MIN:
        result.findings.append(Finding("ok", "kernels", f"bf16: auto -> fp16 (compute capability {_cc(cc)})"))
    return result


def fallback_allowed(r) -> bool:
    """The recipe allows SDPA when its flash attention is the GPU profile's speed choice, not its own setting."""
    if "attn_implementation" in r.overrides or "flash_attention" in r.overrides:
        return False
    return r.where("attn_implementation").file == GPU_PROFILE


def require(r, args: str | dict | None, machine: Machine | None = None, say=None) -> str | dict | None:
    """`make train` on a CUDA machine: raise one UserError for everything the resolved config asks for that
    cannot run here; return ARGS with the SDPA fallback added. CPU runs pass unchanged. The fallback is said once:
    by make train's preflight (check_kernels is one of launch/preflight/checks.py's machine checks), or here with `say`."""
    if r.device != "gpu":
        return args
    m = machine or probe(r.settings)
    if not m.cuda:
        return args  # DEVICE=gpu without CUDA: the config is only being prepared here
    result = check(r.config, m, fallback_allowed(r), r.recipe.where)
    if result.errors:
        raise UserError(
            f"this machine ({m.describe()}) cannot run what {r.recipe.name} asks for:\n  "
            + "\n  ".join(str(f) for f in result.errors),
            hint="fix the set-up (make setup) or the recipe; nothing was started",
        )
    for f in result.findings:
        if f.level == "warning" and say is not None:
            say(f"note: {f.message}")
    if not result.overrides:
        return args
    from resolver import overrides as ov

    return {**(args if isinstance(args, dict) else ov.parse(args)), **result.overrides}


def check_kernels(r, machine: Machine | None = None) -> list[Finding]:
    """The preflight check (make check): the same check where the run trains, a note elsewhere."""
    if r.device != "gpu":
        return []
    m = machine or probe(r.settings)
    if not m.cuda:
        return [Finding("ok", "kernels", "checked by make train on the machine that trains (no CUDA device here)")]
    return check(r.config, m, fallback_allowed(r), r.recipe.where).findings


def profile_config(flash: bool = True) -> dict[str, Any]:
    """What the GPU recipes can ask for at once: the GPU profile, DeepSpeed and QLoRA."""
    from core.paths import REPO
    from resolver.compose import compose

    config, _, _ = compose(REPO / GPU_PROFILE)
    config.update(deepspeed="zero3.json", adapter="qlora", load_in_4bit=True, lora_mlp_kernel=True)
    if not flash:
        config["attn_implementation"] = "sdpa"
    return config


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="make setup on a GPU box: the GPU fast path imports and fits")
    parser.add_argument("--no-flash", action="store_true", help="SDPA instead of flash-attention (FLASH_ATTN=0)")
    ns = parser.parse_args(argv)

    def body(s: Settings) -> int:
        m = probe(s)
        result = check(profile_config(not ns.no_flash), m, allow_fallback=False)
        print(f"GPU fast path on {m.describe()}:")
        for f in result.findings:
            print(f"  {f}")
        if result.errors:
            raise UserError(
                f"the GPU fast path is not usable here ({len(result.errors)} problem(s) above)", hint=SETUP_HINT
            )
        return 0

    return cli.main(body)


if __name__ == "__main__":
    sys.exit(main())
