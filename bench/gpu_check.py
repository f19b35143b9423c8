"""`make gpu-check CARRY=<dir>`: one command on a bare GPU machine with no network (its Python, torch and the
packages of bench/gpu_machine.txt), from the folder `make gpu-carry` built. `make gpu-check CARRY=<dir>
DEVICE=cpu` runs the same script on CPU with tiny models (tests/test_gpu_check.py), so that on a GPU only CUDA
itself can still fail.

This front half uses the standard library only (and packaging, which the machine has): it installs the carry's
wheels with `pip install --no-index --no-deps --target` into a temporary folder, keeping of the carried axolotl
wheels the newest whose declared torch range accepts the torch it finds, makes a venv over this Python whose
.pth puts that folder before this Python's own site-packages (so the machine's torch, transformers, ... are the
ones used; nothing of theirs is replaced) with the carried console scripts (axolotl) beside its python, and runs
bench/gpu_device.py there (the checks of bench/gpu_checks.py, then each recipe's bench/gpu_stages.py). Every
step is a stage of outputs/gpu-check/<UTC timestamp>/report.json and report.md."""

from __future__ import annotations

import argparse
import configparser
import json
import os
import shutil
import site
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

from bench.gpu_report import Report
from core import childenv

REPO = Path(__file__).resolve().parent.parent
CONSOLE = "#!{python}\nimport sys\nfrom {module} import {func}\nif __name__ == '__main__':\n    sys.exit({func}())\n"
HYGIENE = {"AXOLOTL_DO_NOT_TRACK": "1", "DO_NOT_TRACK": "1", "WANDB_MODE": "disabled", "HF_HUB_OFFLINE": "1",
           "HF_DATASETS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false", "HF_HUB_DISABLE_PROGRESS_BARS": "1"}  # fmt: skip


class CheckFailed(Exception):
    pass


def torch_accepted(wheel: Path, torch_version: str) -> tuple[bool, str]:
    from packaging.requirements import Requirement
    from packaging.version import Version

    with zipfile.ZipFile(wheel) as zf:
        meta = zf.read(next(n for n in zf.namelist() if n.endswith(".dist-info/METADATA"))).decode()
    for line in meta.splitlines():
        if line.startswith("Requires-Dist:"):
            req = Requirement(line.split(":", 1)[1].strip())
            if req.name.lower() == "torch" and (req.marker is None or req.marker.evaluate({"extra": ""})):
                return req.specifier.contains(Version(torch_version).base_version, True), str(req.specifier)
    return True, "(none declared)"


def choose_wheels(wheels: Path, torch_version: str) -> tuple[list[Path], dict]:
    """Every carried wheel but axolotl's, and the newest carried axolotl that accepts this torch."""
    from packaging.version import Version

    axolotls = sorted(wheels.glob("axolotl-*.whl"), key=lambda p: Version(p.name.split("-")[1]), reverse=True)
    seen = {}
    for wheel in axolotls:
        ok, spec = torch_accepted(wheel, torch_version)
        seen[wheel.name.split("-")[1]] = spec
        if ok:
            rest = [w for w in wheels.glob("*.whl") if not w.name.startswith("axolotl-")]
            why = f"{wheel.name.split('-')[1]} (declares torch {spec}; this machine has torch {torch_version})"
            return [wheel, *rest], {"axolotl": why, "axolotl_candidates": seen}
    raise CheckFailed(f"no carried axolotl accepts torch {torch_version}: {seen or 'no axolotl wheel in the carry'}")


def install(carry: Path, work: Path, result: dict) -> Path:
    """The carry into work/site and a venv over this Python that sees it first; returns the venv's python."""
    import importlib.metadata as md

    torch_version = md.version("torch")
    wheels, why = choose_wheels(carry / "wheels", torch_version)
    result.update(why, torch=torch_version, wheels=len(wheels))
    target = work / "site"
    cmd = [sys.executable, "-m", "pip", "install", "-q", "--no-index", "--no-deps", "--disable-pip-version-check",
           "--no-compile", "--target", str(target), *map(str, wheels)]  # fmt: skip
    env = childenv.child_env(extra={"PIP_CONFIG_FILE": os.devnull})  # no index, no config: the carry only
    done = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if done.returncode != 0:
        raise CheckFailed(f"pip install --no-index --no-deps --target failed: {done.stderr.strip()[-1500:]}")
    venv = work / "env"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, capture_output=True)
    python = venv / "bin" / "python"
    found = subprocess.run([str(python), "-c", "import site; print(site.getsitepackages()[0])"], capture_output=True,
                           text=True, check=True).stdout.strip()  # fmt: skip
    # the carry first, then this Python's own packages (a system Python's, or a venv's such as /opt/torch/.venv)
    (Path(found) / "zz-gpu-check.pth").write_text("\n".join([str(target), *site.getsitepackages()]) + "\n")
    scripts = []
    for info in target.glob("*.dist-info/entry_points.txt"):
        parser = configparser.ConfigParser()
        parser.read(info)
        for name, ref in parser["console_scripts"].items() if parser.has_section("console_scripts") else []:
            module, _, func = ref.partition(":")
            (venv / "bin" / name).write_text(CONSOLE.format(python=python, module=module, func=func.split()[0]))
            (venv / "bin" / name).chmod(0o755)
            scripts.append(name)
    result["console_scripts"] = sorted(scripts)
    return python


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("carry", nargs="?", default="", help="the folder make gpu-carry built (CARRY=)")
    parser.add_argument("--device", default="", help="cpu: the same script on CPU with tiny models (DEVICE=)")
    parser.add_argument("--steps", type=int, default=None, help="optimizer steps per side")
    parser.add_argument("--recipes", default=None, help="comma-separated (default: both recipes)")
    parser.add_argument("--outputs", default=os.environ.get("OUTPUTS") or str(REPO / "outputs"))
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder (models, runs)")
    ns = parser.parse_args(argv)
    if not ns.carry:
        print("error: CARRY is not set\n  hint: make gpu-carry OUT=<dir> where the package index is reachable, "
              "then make gpu-check CARRY=<dir>", file=sys.stderr)  # fmt: skip
        return 2
    carry = Path(ns.carry).expanduser().resolve()
    if not (carry / "MANIFEST.json").is_file():
        print(f"error: {carry}: no MANIFEST.json (not a folder make gpu-carry built)", file=sys.stderr)
        return 2
    folder = Path(ns.outputs) / "gpu-check" / time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    command = "make gpu-check CARRY=" + str(carry) + (f" DEVICE={ns.device}" if ns.device else "")
    report = Report(folder, command)
    work = Path(tempfile.mkdtemp(prefix="gpu-check-"))
    made: list[Path] = []

    def install_stage(result: dict) -> None:
        result["carry"] = str(carry)
        result["manifest"] = {k: v for k, v in json.loads((carry / "MANIFEST.json").read_text()).items()
                              if k in ("built", "machine_list", "axolotl", "differs_from_machine", "unmet", "bytes")}  # fmt: skip
        made.append(install(carry, work, result))
        result["note"] = result["axolotl"]

    report.run("install the carry", install_stage)
    python = made[0] if made else None
    rc = 1
    if python is not None:
        env = {
            **os.environ,
            **HYGIENE,
            "PYTHONPATH": str(REPO),
            "OUTPUTS": str(work / "outputs"),
            "HF_HOME": str(work / "hf"),
        }
        if ns.device == "cpu":
            env.update(DEVICE="cpu", CUDA_VISIBLE_DEVICES="")
        cmd = [
            str(python),
            "-m",
            "bench.gpu_device",
            "--carry",
            str(carry),
            "--work",
            str(work),
            "--report",
            str(folder),
        ]
        cmd += [f"--steps={ns.steps}"] if ns.steps else []
        cmd += [f"--recipes={ns.recipes}"] if ns.recipes else []
        cmd += ["--cpu"] if ns.device == "cpu" else []
        rc = subprocess.call(cmd, cwd=REPO, env=env)
        report = Report(folder)  # the stages wrote their results into it
        if rc != 0 and not any(s["status"] in ("failed", "running") for s in report.data["stages"]):

            def crashed(result: dict) -> None:
                raise CheckFailed(f"bench.gpu_device exited {rc} before finishing its report")

            report.run("stages", crashed)
    status = report.finish()
    if not ns.keep:
        shutil.rmtree(work, ignore_errors=True)
    print(f"written: {folder}/report.json report.md")
    print((folder / "report.md").read_text(), end="")
    return 0 if status == "completed" and rc == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
