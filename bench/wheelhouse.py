"""`make wheelhouse WHEELS=<dir>` and `make bench-gpu WHEELS=<dir>`: the GPU bench on a machine without internet
that has Python and a CUDA torch (and perhaps transformers, peft, accelerate: they are not relied on).

collect  (a machine with internet) every distribution the bench imports beyond torch and torch's own dependencies
         (bench/gpu_wheels.txt, measured: the bench runs with those and nothing else, tests/test_wheelhouse.py), at
         the lock's versions (constraints.txt), as wheels for the target (Python 3.12, manylinux x86_64 by default;
         --python/--platform) through pip download --only-binary; a pure-Python project published only as an sdist
         is built into a wheel here. Writes requirements.txt (the pins) and MANIFEST.json (sizes) beside them, and
         says what is biggest when the folder is over AIM_MIB. flash-attn is not carried (SDPA), nor is anything for
         QLoRA beyond what axolotl imports anyway.
run      (the target) a venv that sees the machine's packages after its own, so the machine's torch stays; pip's own
         `install --dry-run --report` must show torch (and its CUDA libraries) untouched, then pip installs from the
         folder with --no-index, and the venv's Python runs `python -m bench.gpu`.
Standard library only: on the target nothing else exists before the install."""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from pathlib import Path

from core import cli
from core.errors import UserError, Where

HERE = Path(__file__).resolve().parent
LIST = HERE / "gpu_wheels.txt"
LOCK = HERE.parent / "constraints.txt"
AIM_MIB = 64
TARGET_PYTHON = "3.12"
PLATFORMS = ("manylinux_2_28_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64", "linux_x86_64")
# torch and what torch's own wheel brings: the target's, never carried, never replaced
TORCH_OWN = ("torch", "triton", "sympy", "mpmath", "networkx", "jinja2", "markupsafe", "filelock", "fsspec",
             "typing-extensions", "setuptools")  # fmt: skip


def norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def listed(path: Path = LIST) -> list[str]:
    return [line.split("#")[0].strip() for line in path.read_text().splitlines() if line.split("#")[0].strip()]


def pins(names: list[str], lock: Path = LOCK) -> list[str]:
    """name==version for each name, from the lock; a name the lock does not pin is an error."""
    locked = {}
    for line in lock.read_text().splitlines():
        m = re.match(r"^([A-Za-z0-9_.\-]+)==(\S+)", line.strip())
        if m:
            locked[norm(m.group(1))] = f"{m.group(1)}=={m.group(2)}"
    missing = [n for n in names if norm(n) not in locked]
    if missing:
        raise UserError(
            f"not pinned in {lock.name}: {', '.join(missing)}", Where(str(LIST)), "make lock, or fix the list"
        )
    return [locked[norm(n)] for n in names]


def pip(python: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([python, "-m", "pip", "--disable-pip-version-check", *args], capture_output=True, text=True)


def collect(folder: Path, names: list[str] | None = None, lock: Path = LOCK, python: str = TARGET_PYTHON,
            platforms: tuple[str, ...] = PLATFORMS) -> dict:  # fmt: skip
    folder.mkdir(parents=True, exist_ok=True)
    wanted = pins(names if names is not None else listed(), lock)
    tags = [f"--platform={p}" for p in platforms] + [f"--python-version={python}", "--implementation=cp"]
    built = []
    for req in wanted:
        got = pip(sys.executable, "download", "-q", "--no-deps", "--only-binary=:all:", *tags, "-d", str(folder), req)
        if got.returncode != 0:  # only an sdist: a pure-Python project, built into a py3-none-any wheel
            made = pip(sys.executable, "wheel", "-q", "--no-deps", "-w", str(folder), req)
            if made.returncode != 0:
                raise UserError(f"no wheel of {req} for Python {python} ({got.stderr.strip()[-300:]})")
            built.append(req)
    (folder / "requirements.txt").write_text("\n".join(wanted) + "\n")
    wheels = sorted(folder.glob("*.whl"))
    sizes = {w.name: w.stat().st_size for w in wheels}
    total = sum(sizes.values()) / 2**20
    manifest = {"python": python, "platforms": list(platforms), "requirements": wanted, "built_from_sdist": built,
                "wheels": sizes, "total_mib": round(total, 1), "aim_mib": AIM_MIB}  # fmt: skip
    (folder / "MANIFEST.json").write_text(json.dumps(manifest, indent=2))
    print(f"wheelhouse: {len(wheels)} wheels, {total:.1f} MiB in {folder}")
    if total > AIM_MIB:
        big = sorted(sizes.items(), key=lambda kv: -kv[1])[:6]
        print(f"over the {AIM_MIB} MiB aim; biggest: " + ", ".join(f"{n} {s / 2**20:.0f} MiB" for n, s in big))
    return manifest


def _torch_own(name: str) -> bool:
    n = norm(name)
    return n in {norm(t) for t in TORCH_OWN} or n.startswith("nvidia-")


def install(folder: Path, venv: Path, base_python: str = sys.executable) -> Path:
    """The wheelhouse into a venv over this machine's Python; returns the venv's python."""
    req = folder / "requirements.txt"
    if not req.is_file():
        raise UserError(f"{folder} holds no requirements.txt", Where(str(folder)), "make wheelhouse WHEELS=<dir> first")
    python = venv / "bin" / "python"
    if not python.exists():
        subprocess.run([base_python, "-m", "venv", str(venv)], check=True)
        # the machine's packages (a system Python's, or a venv's or conda env's) after the venv's own: what the
        # wheelhouse brings shadows them, the machine's torch is used as it is, and pip never touches them there
        found = subprocess.run(
            [base_python, "-c", "import json, site; print(json.dumps(site.getsitepackages()))"],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        site = next((venv / "lib").glob("python3*/site-packages"))
        (site / "zz-machine.pth").write_text("\n".join(json.loads(found.stdout)) + "\n")
    offline = ["--no-index", "--find-links", str(folder), "--no-deps", "-r", str(req)]
    report = venv / "wheelhouse-report.json"
    dry = pip(str(python), "install", "-q", "--dry-run", "--report", str(report), *offline)
    if dry.returncode != 0:
        raise UserError(f"pip cannot install the wheelhouse here: {dry.stderr.strip()[-500:]}", Where(str(folder)))
    touched = [
        i["metadata"]["name"] for i in json.loads(report.read_text())["install"] if _torch_own(i["metadata"]["name"])
    ]
    if touched:
        raise UserError(f"the wheelhouse would replace this machine's {', '.join(touched)}", Where(str(folder)))
    done = pip(str(python), "install", "-q", *offline)
    if done.returncode != 0:
        raise UserError(f"pip install from {folder} failed: {done.stderr.strip()[-500:]}", Where(str(folder)))
    return python


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["collect", "run"])
    parser.add_argument("wheels", nargs="?", default="", help="the folder (WHEELS=)")
    parser.add_argument("--python", default=TARGET_PYTHON, help="collect for this Python (default 3.12)")
    parser.add_argument("--venv", default=None, help="run: where the venv goes (default: <wheels>/.venv)")
    ns, rest = parser.parse_known_args(argv)

    def body() -> int:
        if not ns.wheels:
            raise UserError(
                "WHEELS is not set",
                Where(key="WHEELS"),
                f"make {ns.command.replace('collect', 'wheelhouse').replace('run', 'bench-gpu')} WHEELS=<dir>",
            )
        folder = Path(ns.wheels).expanduser().resolve()
        if ns.command == "collect":
            collect(folder, python=ns.python)
            return 0
        python = install(folder, Path(ns.venv) if ns.venv else folder / ".venv")
        return subprocess.call([str(python), "-m", "bench.gpu", *rest], cwd=HERE.parent)

    return cli.main(body)


if __name__ == "__main__":
    sys.exit(main())
