"""A Python 3.12 environment laid out like axolotl's cloud image, built for a test on a CPU box.

axolotl's image keeps its environment in /workspace/axolotl-venv (launch/cloud/image.py); here that is
<root>/workspace/axolotl-venv, a real venv with pip. It holds axolotl at another minor version than the lock
(tests/fixtures/image-axolotl-0.20.0.txt: axolotl 0.20.0 and the versions its metadata pins, installed from the
package registry, no dependency resolution) and sees the rest of this repo's venv through a read-only view folder
outside the environment (one .pth line). The view shares torch and its CUDA libraries (never a second torch) and
leaves out a few small packages our requirements name, so image-mode set-up has something missing to install.
pip never writes into the view: anything it would change lives outside its environment.
"""

from __future__ import annotations

import importlib.metadata as md
import re
import subprocess
import sys
from pathlib import Path

from core.paths import REPO
from tests.wheels import CONSOLE

PINS = REPO / "tests" / "fixtures" / "image-axolotl-0.20.0.txt"
LEFT_OUT = ("gotpl", "rouge-score")  # ours, not the image's: set-up must install them
ALWAYS_OWN = ("pip", "setuptools", "wheel", "axolotl")


def norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def pins() -> dict[str, str]:
    out = {}
    for line in PINS.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, version = line.strip().partition("==")
            out[norm(name)] = version
    return out


def build(root: Path) -> Path:
    """The image's python at root/workspace/axolotl-venv/bin/python."""
    site = Path(next(p for p in sys.path if p.endswith("site-packages")))
    skip = {*pins(), *map(norm, ALWAYS_OWN), *map(norm, LEFT_OUT)}
    view = root / "view"
    view.mkdir(parents=True)
    tops: set[str] = set()
    for dist in md.distributions(path=[str(site)]):
        if norm(dist.metadata["Name"]) not in skip:
            tops |= {f.parts[0] for f in dist.files or [] if f.parts[0] != ".."}
    for top in sorted(tops):
        if (site / top).exists():
            (view / top).symlink_to(site / top)
    prefix = root / "workspace" / "axolotl-venv"
    base = Path(getattr(sys, "_base_executable", sys.executable))
    subprocess.run([str(base), "-m", "venv", str(prefix)], check=True, capture_output=True, timeout=300)
    python = prefix / "bin" / "python"
    own = next((prefix / "lib").glob("python3*/site-packages"))
    (own / "affinage-image-view.pth").write_text(f"{view}\n")
    wanted = [f"{n}=={v}" for n, v in pins().items()]
    proc = subprocess.run(
        [str(python), "-m", "pip", "install", "-q", "--no-deps", "--disable-pip-version-check", *wanted],
        capture_output=True,
        text=True,
        timeout=1200,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"building the image environment failed: {proc.stderr[-3000:]}")
    scripts = (("accelerate", "accelerate.commands.accelerate_cli"), ("torchrun", "torch.distributed.run"))
    # console scripts of the view's packages, as the image has them (pip wrote axolotl's)
    for script, module in scripts:
        path = prefix / "bin" / script
        if not path.exists():  # the guard: datasets' spawned workers import this script again
            path.write_text(CONSOLE.format(python=python, module=module))
            path.chmod(0o755)
    return python


def versions(python: Path) -> dict[str, str]:
    """What `python` imports: the first distribution of each name on its sys.path."""
    code = (
        "import importlib.metadata as md, json, re\n"
        "seen = {}\n"
        "for d in md.distributions():\n"
        "    seen.setdefault(re.sub(r'[-_.]+', '-', d.metadata['Name']).lower(), d.version)\n"
        "print(json.dumps(seen))\n"
    )
    import json

    out = subprocess.run([str(python), "-c", code], capture_output=True, text=True, check=True, timeout=120)
    return json.loads(out.stdout)
