"""`make wheelhouse` / `make bench-gpu WHEELS=` (bench/wheelhouse.py): the list of what the GPU bench needs beyond
torch is pinned by the lock and is enough (the bench script runs, on CPU, in a venv that sees torch, torch's own
dependencies and that list, nothing else); collect fetches exactly those pins as wheels for the target's Python
(here from a local folder of stand-in wheels, offline); run installs them with no index into a venv over the
machine's Python, and pip's own report shows the machine's torch untouched."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from bench import wheelhouse as wh
from core.errors import UserError
from tests.conftest import OFFLINE
from tests.wheels import build_wheel, make_venv, overlay_venv, pip, pip_env, versions

SITE = Path(next(p for p in sys.path if p.endswith("site-packages")))


def test_the_list_is_pinned_by_the_lock_and_leaves_torch_to_the_machine():
    names = wh.listed()
    assert names and len(names) == len({wh.norm(n) for n in names})
    assert all(p.count("==") == 1 for p in wh.pins(names))
    assert not [n for n in names if wh._torch_own(n)]  # torch and its own dependencies are the machine's
    assert "flash-attn" not in names and "axolotl" in names and "liger-kernel" in names
    with pytest.raises(UserError, match="not pinned in constraints.txt: no-such-dist"):
        wh.pins(["no-such-dist"])


def test_collect_and_install_offline(tmp_path, monkeypatch):
    index = tmp_path / "index"  # what an index would offer: the lock's pins, and a newer torch
    for name, version in (("axolotl", "0.19.0"), ("trl", "1.9.0"), ("torch", "2.99.0")):
        build_wheel(index, name, version)
    lock = tmp_path / "lock.txt"
    lock.write_text("axolotl==0.19.0\ntrl==1.9.0\ntorch==2.99.0\n")
    for key, value in pip_env(index).items():
        monkeypatch.setenv(key, value)
    folder = tmp_path / "wheels"
    manifest = wh.collect(folder, ["axolotl", "trl"], lock)
    assert manifest["requirements"] == ["axolotl==0.19.0", "trl==1.9.0"] and manifest["python"] == "3.12"
    assert sorted(p.name for p in folder.glob("*.whl")) == [
        "axolotl-0.19.0-py3-none-any.whl",
        "trl-1.9.0-py3-none-any.whl",
    ]
    assert json.loads((folder / "MANIFEST.json").read_text())["total_mib"] < 1

    machine = tmp_path / "machine"  # the target: Python with its own (stand-in) CUDA torch
    build_wheel(tmp_path / "own", "torch", "2.11.0+cu130")
    py = make_venv(machine)
    pip(py, tmp_path / "own", "install", "-q", "torch==2.11.0+cu130")
    venv_py = wh.install(folder, tmp_path / "bench-venv", str(py))
    seen = versions(venv_py)
    assert seen["axolotl"] == "0.19.0" and seen["trl"] == "1.9.0" and seen["torch"] == "2.11.0+cu130"
    assert versions(py).get("axolotl") is None  # the machine's Python is not changed
    report = json.loads((tmp_path / "bench-venv" / "wheelhouse-report.json").read_text())
    assert "torch" not in [i["metadata"]["name"] for i in report["install"]]

    (folder / "requirements.txt").write_text("axolotl==0.19.0\ntorch==2.99.0\n")  # a wheelhouse that carries torch
    build_wheel(folder, "torch", "2.99.0")
    with pytest.raises(UserError, match="would replace this machine's torch"):
        wh.install(folder, tmp_path / "other-venv", str(py))


def test_run_without_a_wheelhouse_says_what_to_do(tmp_path):
    assert wh.main(["run", str(tmp_path)]) == 2
    assert wh.main(["collect"]) == 2


@pytest.mark.slow
def test_the_list_is_enough_for_the_bench(tmp_path, tiny_model):
    """The bench script, on CPU, in a venv that sees torch, torch's own dependencies and the list: nothing else."""
    import importlib.metadata as md
    import subprocess

    own = [d.metadata["Name"] for d in md.distributions(path=[str(SITE)]) if wh._torch_own(d.metadata["Name"])]
    tests_need = ["pytest", "pluggy", "iniconfig"]  # nothing of the bench; the tiny model was built here
    python = overlay_venv(tmp_path / "overlay", [*own, *wh.listed(), *tests_need], SITE)
    env = {
        "PATH": f"{python.parent}:/usr/bin:/bin",
        "PYTHONPATH": str(wh.HERE.parent),
        "OUTPUTS": str(tmp_path / "outputs"),
        "HOME": str(Path.home()),
        "CUDA_VISIBLE_DEVICES": "",
        **OFFLINE,
    }
    tiny = tiny_model("llama")
    proc = subprocess.run(
        [str(python), "-m", "bench.gpu", "--cpu", f"--model={tiny}", "--recipes=qwen25-3b-instruct-brie", "--steps=2",
         "--args=--sequence_len=256 --micro_batch_size=2 --gradient_accumulation_steps=1",
         f"--brie={tmp_path / 'no-brie'}"],  # packing is a CPU figure measured where the Brie data is
        cwd=wh.HERE.parent, env=env, capture_output=True, text=True, timeout=2400,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "| qwen25-3b-instruct-brie" in proc.stdout.splitlines()[-1]
