"""The GPU check's own CUDA work, each in a child process so the check's process never holds GPU memory while the
trainings it measures run: `info` (the machine as torch and the installed packages see it) and `build` (a
random-weight model of a carried config: the real shape in bf16 on a GPU; with --tiny, the tiny sizes on CPU with
the real tokenizer and vocabulary). Prints one JSON line."""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import sys
from pathlib import Path

PACKAGES = ("torch", "transformers", "peft", "accelerate", "axolotl", "trl", "datasets", "deepspeed", "liger-kernel",
            "bitsandbytes", "flash-attn", "triton")  # fmt: skip
TINY = {"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4,
        "num_key_value_heads": 2, "head_dim": 16, "max_position_embeddings": 2048}  # fmt: skip


def info() -> dict:
    import importlib.metadata as md

    import torch

    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = md.version(name)
        except md.PackageNotFoundError:
            versions[name] = None
    gpu = torch.cuda.is_available()
    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "gpu": torch.cuda.get_device_name(0) if gpu else None,
        "capability": list(torch.cuda.get_device_capability(0)) if gpu else None,
        "vram_gib": torch.cuda.get_device_properties(0).total_memory / 1024**3 if gpu else None,
        "versions": versions,
    }


def build(config_dir: Path, out: Path, tiny: bool) -> dict:
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    config = AutoConfig.from_pretrained(config_dir)
    if tiny:  # the tiny sizes, the real vocabulary; per-layer lists (layer_types) follow the layer count
        raw = {k: v for k, v in config.to_dict().items() if k != "layer_types"}
        config = AutoConfig.for_model(raw.pop("model_type"), **{**raw, **TINY})
    gpu = torch.cuda.is_available() and not tiny
    torch.manual_seed(0)
    with torch.device("cuda" if gpu else "cpu"):
        model = AutoModelForCausalLM.from_config(config, dtype=torch.bfloat16 if gpu else torch.float32)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    for f in config_dir.iterdir():
        if f.name.startswith("tokenizer") or f.name == "special_tokens_map.json":
            shutil.copyfile(f, out / f.name)
    params = sum(p.numel() for p in model.parameters())
    return {"path": str(out), "params": params, "dtype": str(model.dtype), "bytes": sum(
        p.stat().st_size for p in out.iterdir())}  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=["info", "build"])
    parser.add_argument("--config", default=None)
    parser.add_argument("--out", default=None)
    parser.add_argument("--tiny", action="store_true")
    ns = parser.parse_args()
    result = info() if ns.what == "info" else build(Path(ns.config), Path(ns.out), ns.tiny)
    print("GPU_MODEL " + json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
