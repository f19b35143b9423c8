"""`make gpu-check` on CPU (DEVICE=cpu) in an environment that holds only the GPU machine's packages and the carry,
so that on a GPU only CUDA itself can still fail; and the pieces it stands on: the report that keeps every stage,
the choice of axolotl by its declared torch range, the trimmed wheels, the install that replaces nothing.

The machine's environment is a venv with no pip of its own whose site-packages holds the project venv's
distributions of the names in bench/gpu_machine.txt (symlinked: no second torch is installed; versions are this
venv's, not the GPU machine's), and nothing else: an import of a package neither there nor in the carry fails
there as it would on the GPU machine. The carry is built by `make gpu-carry`'s own code from wheels rebuilt from
this venv's installed distributions of the carry list's names (offline: --find-links), with SmolLM2's tokenizer
standing in for Qwen's (which the carry takes from the package index)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from bench import carry, carry_wheels
from bench.gpu_check import choose_wheels
from bench.gpu_report import Report
from core import settings
from core.paths import REPO
from tests.conftest import OFFLINE, SHARED
from tests.wheels import build_wheel, installed, machine_venv, wheel_from_installed

SITE = Path(next(p for p in sys.path if p.endswith("site-packages")))


def test_the_machine_list_is_dated_and_the_carry_lists_nothing_it_has():
    machine, facts = carry_wheels.machine_list()
    assert facts["read"] == "2026-11-17" and facts["python"] == "3.12.3" and facts["cuda"] == "13.0"
    assert machine["torch"] == "2.11.0+cu130" and machine["transformers"] == "5.17.0" and "axolotl" not in machine
    names = carry_wheels.carry_list()
    assert "axolotl" in names and not set(names) & set(machine)
    for absent in ("axolotl", "trl", "datasets", "bitsandbytes", "liger-kernel"):  # what the machine lacks
        assert absent in names and absent not in machine
    assert names["bitsandbytes"]["keep_cuda"] and names["wandb"]["drop"] == ["wandb/bin/*"]


def axolotl_wheels(folder: Path) -> None:
    build_wheel(folder, "axolotl", "0.19.0", requires=["torch<=2.13.0,>=2.11.0"])
    build_wheel(folder, "axolotl", "0.21.0", requires=["torch<2.15.0,>=2.13.0"])


def test_axolotl_is_the_newest_whose_declared_torch_range_accepts_the_machines(tmp_path):
    index = tmp_path / "index"
    axolotl_wheels(index)
    pip = carry_wheels.Pip(f"{sys.version_info[0]}.{sys.version_info[1]}", index)
    for torch, chosen in (("2.11.0+cu130", "0.19.0"), ("2.14.0", "0.21.0")):
        wheel, seen = carry_wheels.choose_axolotl(pip, torch, tmp_path / f"c{chosen}")
        assert wheel.name.startswith(f"axolotl-{chosen}-"), seen
    with pytest.raises(Exception, match="no axolotl release .* accepts torch 2.10.0"):
        carry_wheels.choose_axolotl(pip, "2.10.0", tmp_path / "none")
    # on the GPU machine, the same choice among the carried wheels
    wheels, why = choose_wheels(index, "2.11.0+cu130")
    assert wheels[0].name.startswith("axolotl-0.19.0") and "torch 2.11.0+cu130" in why["axolotl"]
    assert choose_wheels(index, "2.13.1")[0][0].name.startswith("axolotl-0.21.0")


def test_a_trimmed_wheel_keeps_the_machines_cuda_and_installs(tmp_path):
    import zipfile

    wheel = build_wheel(tmp_path, "bnb-standin", "1.0")
    with zipfile.ZipFile(wheel, "a") as zf:
        for lib in ("cuda118", "cuda128", "cuda130", "cuda132", "rocm64", "cpu"):
            zf.writestr(f"bnb_standin/libbitsandbytes_{lib}.so", b"\0" * 1000)
    cut = carry_wheels.trim(wheel, {"drop": [], "keep_cuda": True}, "13.0")
    left = set(zipfile.ZipFile(wheel).namelist())
    assert {"bnb_standin/libbitsandbytes_cuda130.so", "bnb_standin/libbitsandbytes_cpu.so"} <= left
    assert len(cut["left_out"]) == 4 and not any("cuda128" in n for n in left)
    target = tmp_path / "site"
    proc = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-index", "--no-deps", "--target",
                           str(target), str(wheel)], capture_output=True, text=True)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert (target / "bnb_standin" / "libbitsandbytes_cuda130.so").is_file()


def test_a_failed_stage_is_named_and_what_needed_it_says_so(tmp_path):
    report = Report(tmp_path / "r", "make gpu-check")
    report.run("one", lambda r: r.update(note="fine"))

    def boom(r):
        raise RuntimeError("the packing failed")

    report.run("two", boom)
    report.run("three", lambda r: r.update(note="never"), needs=("one", "two"))
    assert report.finish() == "failed"
    data = json.loads((tmp_path / "r" / "report.json").read_text())
    assert [s["status"] for s in data["stages"]] == ["ok", "failed", "skipped"]
    assert "RuntimeError: the packing failed" in data["stages"][1]["error"]
    assert data["stages"][2]["error"] == "needs two, which did not succeed"
    md = (tmp_path / "r" / "report.md").read_text()
    assert "| two | failed |" in md and "the packing failed" in md


def brie_or_standin(tmp_path: Path) -> Path:
    """../shared/brie, or (where it is absent, said) the repo's own chat samples under the Brie file names."""
    if all((SHARED / "brie" / f).is_file() for f in carry.BRIE_FILES):
        return SHARED / "brie"
    print(f"the Brie data is absent ({SHARED / 'brie'}): the repo's chat samples stand in for it")
    out = tmp_path / "brie"
    out.mkdir()
    for name, sample in zip(carry.BRIE_FILES, ("train", "val"), strict=True):
        shutil.copyfile(REPO / "data" / "samples" / f"philosophy_chat.{sample}.jsonl", out / name)
    return out


@pytest.mark.slow
def test_gpu_check_on_cpu_with_only_the_machines_packages_and_the_carry(tmp_path):
    import torch

    from tools.tiny_models import smollm2_dir

    machine, _ = carry_wheels.machine_list()
    python, absent = machine_venv(tmp_path / "machine", list(machine), SITE)
    have, names = installed(SITE), carry_wheels.carry_list()
    lacking = [n for n in names if n not in have]
    assert not lacking, f"the project venv lacks carried packages: {lacking}"
    for n in names:
        wheel_from_installed(have[n], SITE, tmp_path / "wheels")
    built = carry.build(
        tmp_path / "carry", brie_or_standin(tmp_path), tmp_path / "wheels", torch.__version__,
        f"{sys.version_info[0]}.{sys.version_info[1]}", tokenizers={carry.RECIPES[0]: smollm2_dir(settings.load().cache)}, cache=settings.load().cache,
    )  # fmt: skip
    assert built["bytes"] <= carry.CARRY_MIB * 2**20 and not built["unmet"]
    # the machine's environment: a package on neither list does not import there
    env = {"PATH": "/usr/bin:/bin", "HOME": str(Path.home()), **OFFLINE}
    gone = subprocess.run([str(python), "-c", "import axolotl"], env=env, capture_output=True, text=True)
    assert gone.returncode != 0 and "No module named 'axolotl'" in gone.stderr
    proc = subprocess.run(
        ["make", "-s", "gpu-check", f"CARRY={tmp_path / 'carry'}", "DEVICE=cpu", f"GPU_PYTHON={python}"],
        cwd=REPO, env={**env, "OUTPUTS": str(tmp_path / "outputs")}, capture_output=True, text=True, timeout=3600,
    )  # fmt: skip
    [folder] = list((tmp_path / "outputs" / "gpu-check").iterdir())
    report = json.loads((folder / "report.json").read_text())
    stages = {s["name"]: s for s in report["stages"]}
    bad = {k: s.get("error") for k, s in stages.items() if s["status"] != "ok"}
    assert proc.returncode == 0 and report["status"] == "completed" and not bad, (bad, proc.stdout[-3000:])
    assert stages["install the carry"]["result"]["axolotl"].startswith(built["axolotl"]["chosen"])
    assert "axolotl" in stages["install the carry"]["result"]["console_scripts"]
    for recipe in carry.RECIPES:
        x = stages[f"{recipe}: compare"]["result"]
        for side in ("ours", "baseline"):
            s = x[side]
            assert s["tokens_per_s"] > 0 and 0 < s["tokens"] <= s["slots"] and s["timed_steps"] >= 1, (side, s)
            assert s["peak_rss_gib"] > 0 and s["mfu"] is None and "CPU" in s["mfu_note"], (side, s)
            assert s["matmul_trained"] > 0 and s["attention_flops"] > 0
        assert x["speedup"] > 0 and x["plan_gib"] > 0 and x["memory_compared"] == "peak_rss_gib"
        assert stages[f"{recipe}: model"]["result"]["source"]["recipe"] == recipe
    assert stages[f"{carry.RECIPES[1]}: data"]["result"]["format"] == "prompt-completion"
    assert stages["DeepSpeed ZeRO-2, 1 GPU"]["result"]["note"].startswith("not run on CPU")
    md = (folder / "report.md").read_text()
    assert "| qwen25-3b-instruct-brie | ours (make train) |" in md and "ours / baseline" in md
    assert f"written: {folder}/report.json" in proc.stdout
    assert absent is not None  # the machine's packages this venv lacks are simply absent there


def test_gpu_check_refuses_a_folder_that_is_not_a_carry(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "bench.gpu_check", str(tmp_path)], cwd=REPO, capture_output=True,
                          text=True, env={**os.environ, "OUTPUTS": str(tmp_path / "o")})  # fmt: skip
    assert proc.returncode == 2 and "no MANIFEST.json" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "o").exists()  # nothing written for a command that could not start
