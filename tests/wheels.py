"""Tiny stand-in wheels built in a test: a distribution of a given name, version and dependencies that pip installs,
resolves and reports like the real one (what an image's torch or deepspeed look like to pip), and a venv to put
them in. No index is reached: pip runs with --no-index, --find-links to the test's folder and no config files."""

from __future__ import annotations

import base64
import hashlib
import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path


def _record_line(name: str, data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{name},sha256={digest},{len(data)}"


def build_wheel(folder: Path, name: str, version: str, requires=(), extras: dict | None = None) -> Path:
    """A py3-none-any wheel `name`==`version` whose import package is `name` with dashes as underscores."""
    folder.mkdir(parents=True, exist_ok=True)
    dist = re.sub(r"[-.]+", "_", name)
    info = f"{dist}-{version}.dist-info"
    meta = ["Metadata-Version: 2.1", f"Name: {name}", f"Version: {version}"]
    meta += [f"Requires-Dist: {r}" for r in requires]
    for extra, reqs in (extras or {}).items():
        meta.append(f"Provides-Extra: {extra}")
        meta += [f'Requires-Dist: {r}; extra == "{extra}"' for r in reqs]
    files = {
        f"{dist}/__init__.py": f"__version__ = {version!r}\n".encode(),
        f"{info}/METADATA": ("\n".join(meta) + "\n").encode(),
        f"{info}/WHEEL": b"Wheel-Version: 1.0\nGenerator: tests/wheels.py\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = [_record_line(n, d) for n, d in files.items()] + [f"{info}/RECORD,,"]
    files[f"{info}/RECORD"] = ("\n".join(record) + "\n").encode()
    path = folder / f"{dist}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as zf:
        for n, d in files.items():
            zf.writestr(n, d)
    return path


def pip_env(wheels: Path, **extra: str) -> dict[str, str]:
    """pip offline on `wheels` only: no index, no config file, none of this machine's PIP_* settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
    env.update(
        PIP_CONFIG_FILE=os.devnull, PIP_NO_INDEX="1", PIP_FIND_LINKS=str(wheels), PIP_DISABLE_PIP_VERSION_CHECK="1"
    )
    env.update(extra)
    return env


def make_venv(path: Path) -> Path:
    """A fresh venv on this Python's base interpreter; returns its python."""
    base = Path(getattr(sys, "_base_executable", sys.executable))
    subprocess.run([str(base), "-m", "venv", str(path)], check=True, capture_output=True, timeout=300)
    return path / "bin" / "python"


def pip(python: Path, wheels: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(python), "-m", "pip", *args], env=pip_env(wheels), capture_output=True, text=True, timeout=600, check=check
    )


def versions(python: Path) -> dict[str, str]:
    """{normalized name: version} of every distribution `python` sees."""
    code = (
        "import importlib.metadata as md, json, re; "
        "print(json.dumps({re.sub(r'[-_.]+', '-', d.metadata['Name']).lower(): d.version for d in md.distributions()}))"
    )
    import json

    out = subprocess.run([str(python), "-c", code], capture_output=True, text=True, check=True, timeout=120)
    return json.loads(out.stdout)


CONSOLE = "#!{python}\nimport sys\nfrom {module} import main\nif __name__ == '__main__':\n    sys.exit(main())\n"


def overlay_venv(dest: Path, names: list[str], site: Path) -> Path:
    """A venv that sees only the distributions `names` of an installed site-packages (symlinked, read-only: pip
    must never run in it), with the console scripts the launcher calls; returns its python."""
    import importlib.metadata as md

    python = make_venv(dest) if not (dest / "bin" / "python").exists() else dest / "bin" / "python"
    target = next((dest / "lib").glob("python3*/site-packages"))
    norm = {re.sub(r"[-_.]+", "-", d.metadata["Name"]).lower(): d for d in md.distributions(path=[str(site)])}
    tops: set[str] = set()
    for name in names:
        dist = norm[re.sub(r"[-_.]+", "-", name).lower()]
        for f in dist.files or []:
            if f.parts[0] != "..":
                tops.add(f.parts[0])
    for top in sorted(tops):
        if (site / top).exists() and not (target / top).exists():
            (target / top).symlink_to(site / top)
    for script, module in (("axolotl", "axolotl.cli.main"), ("torchrun", "torch.distributed.run")):
        (dest / "bin" / script).write_text(CONSOLE.format(python=python, module=module))
        (dest / "bin" / script).chmod(0o755)
    return python


def norm_name(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def installed(site: Path) -> dict:
    """{normalized name: distribution} of an installed site-packages."""
    import importlib.metadata as md

    return {norm_name(d.metadata["Name"]): d for d in md.distributions(path=[str(site)])}


def wheel_from_installed(dist, site: Path, folder: Path) -> Path:
    """A wheel of an installed distribution, made from the files its RECORD lists (what pip installed from the
    original wheel; console scripts come back from entry_points.txt), tagged as its WHEEL file says."""
    folder.mkdir(parents=True, exist_ok=True)
    files = [f for f in dist.files or [] if f.parts[0] != ".." and "__pycache__" not in f.parts]
    info = next(f.parts[0] for f in files if f.parts[0].endswith(".dist-info"))
    wheel_meta = (site / info / "WHEEL").read_text()
    tags = [line.split(":", 1)[1].strip().split("-") for line in wheel_meta.splitlines() if line.startswith("Tag:")]
    tag = "-".join(".".join(dict.fromkeys(t[i] for t in tags)) for i in range(3))  # py2.py3-none-any
    dist_name = re.sub(r"[-.]+", "_", dist.metadata["Name"])
    path = folder / f"{dist_name}-{dist.version}-{tag}.whl"
    record = []
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        for f in files:
            if f.name == "RECORD" and f.parts[0] == info or not (site / f).is_file():
                continue
            data = (site / f).read_bytes()
            zf.writestr(str(f), data)
            record.append(_record_line(str(f), data))
        zf.writestr(f"{info}/RECORD", "\n".join([*record, f"{info}/RECORD,,"]) + "\n")
    return path


def machine_venv(dest: Path, names: list[str], site: Path) -> tuple[Path, list[str]]:
    """A venv (no pip of its own) whose site-packages holds only the distributions `names` of `site` (symlinked):
    the GPU machine's package list, as this machine has it. Returns its python and the names `site` lacks."""
    base = Path(getattr(sys, "_base_executable", sys.executable))
    subprocess.run([str(base), "-m", "venv", "--without-pip", str(dest)], check=True, capture_output=True, timeout=300)
    target = next((dest / "lib").glob("python3*/site-packages"))
    have = installed(site)
    missing = []
    for name in names:
        dist = have.get(norm_name(name))
        if dist is None:
            missing.append(name)
            continue
        for top in {f.parts[0] for f in dist.files or [] if f.parts[0] != ".."}:
            if (site / top).exists() and not (target / top).exists():
                (target / top).symlink_to(site / top)
    return dest / "bin" / "python", missing
