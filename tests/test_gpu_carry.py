"""`make gpu-carry` (bench/carry.py) from the package index, as a user runs it: the carry for the GPU machine
(Python 3.12, torch 2.11.0+cu130) stays within 56 MiB, so that it and the code fit in the 64 MiB that can be
carried there; its axolotl is the newest whose declared torch range accepts torch 2.11 (read from the wheels'
metadata); the model configs have the real shapes and the tokenizers load with the models' vocabularies. Needs the
package index: skipped, with the reason printed, only where it cannot be reached."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import yaml

from bench import carry, carry_wheels
from core import settings
from core.paths import REPO
from tests.test_gpu_check import brie_or_standin


def index_reachable(folder: Path) -> str | None:
    """None when pip downloads from the package index here, else pip's reason."""
    probe = subprocess.run(
        [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:", "--python-version=3.12",
         "-d", str(folder), "six==1.17.0"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    return None if probe.returncode == 0 else (probe.stderr.strip().splitlines() or ["no answer"])[-1]


@pytest.mark.slow
def test_the_carry_fits_and_holds_what_the_check_needs(tmp_path):
    why = index_reachable(tmp_path / "probe")
    if why is not None:
        pytest.skip(f"the package index is unreachable from here ({why.strip()}); make gpu-carry needs it")
    out = tmp_path / "carry"
    m = carry.build(out, brie_or_standin(tmp_path), cache=settings.load().cache)
    size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    print(f"carry: {size / 2**20:.1f} MiB; biggest: {carry.biggest(out)}")
    assert size == m["bytes"] + (out / carry.MANIFEST).stat().st_size and size <= carry.CARRY_MIB * 2**20
    machine, _ = carry_wheels.machine_list()
    names = set(carry_wheels.carry_list())
    carried = {w["name"] for w in m["wheels"].values()}
    assert carried == names and not carried & set(machine)  # exactly the list, nothing the machine has
    ax = next(out.glob("wheels/axolotl-*.whl"))
    meta = carry_wheels.metadata(ax)
    torch_req = next(r for r in meta["requires"] if r.startswith("torch") and not r.startswith("torchao"))
    from packaging.requirements import Requirement

    assert Requirement(torch_req).specifier.contains("2.11.0") and m["axolotl"]["chosen"] == meta["version"]
    newer = [c for c in m["axolotl"]["candidates"] if c["version"] != meta["version"]]
    assert all(not Requirement(f"torch{c['torch']}").specifier.contains("2.11.0") for c in newer), newer
    bnb = next(out.glob("wheels/bitsandbytes-*.whl"))
    libs = [n for n in zipfile.ZipFile(bnb).namelist() if n.endswith(".so")]
    assert "bitsandbytes/libbitsandbytes_cuda130.so" in libs and not any("cuda128" in n for n in libs)
    from transformers import AutoTokenizer

    hub = yaml.safe_load((REPO / "resolver" / "hub_models.yaml").read_text())
    for recipe in carry.RECIPES:
        folder = out / "models" / recipe
        config = json.loads((folder / "config.json").read_text())
        source = json.loads((folder / "SOURCE.json").read_text())
        facts = hub[source["base_model"]]["config"]
        assert {k: config[k] for k in facts} == facts  # the real shape
        tok = AutoTokenizer.from_pretrained(folder)
        assert len(tok) <= config["vocab_size"] and "STAND-IN" not in source["tokenizer"]
    assert len(AutoTokenizer.from_pretrained(out / "models" / "llama31-8b-instruct")) == 128256
    qwen = AutoTokenizer.from_pretrained(out / "models" / "qwen25-3b-instruct-brie")
    assert qwen.convert_tokens_to_ids("<|im_end|>") == 151645 and qwen.eos_token == "<|im_end|>"
    assert sorted(p.name for p in (out / "data" / "brie").iterdir()) == sorted(carry.BRIE_FILES)


def test_gpu_carry_needs_out():
    proc = subprocess.run([sys.executable, "-m", "bench.carry"], cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 2 and "OUT is not set" in proc.stderr and "make gpu-carry OUT=" in proc.stderr


def test_the_brie_data_is_never_tracked():
    tracked = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True).stdout.splitlines()
    assert not [t for t in tracked if "sft.val" in t or "sft.train.sample" in t or Path(t).suffix == ".whl"]
