"""The software stack this code runs on: the supported range, read from installed metadata (no import of torch or
axolotl), and the pod-start check of an image (`python core/stack.py --gpu`, run by launch/cloud/bootstrap.sh).

Standard library only: the bootstrap runs it in the image's Python before anything of ours is installed.

The lock (constraints.txt) is one point inside the range: Python 3.12, axolotl 0.21.0 and its exact pins. A pod's
image may hold another axolotl minor version; the code works with any axolotl in SUPPORTED (docs/setup.md, "The
supported range": which versions in it are tested, and how).
"""

from __future__ import annotations

import importlib.metadata as md
import re
import sys

# (name, lowest supported, first unsupported): versions compared on their leading numbers
SUPPORTED = {
    "python": ("3.12", "3.13"),
    "axolotl": ("0.19.0", "0.22"),
    # axolotl 0.19.0 declares torch >=2.11,<=2.13; 0.21.0 declares >=2.13,<2.15
    "torch": ("2.11", "2.15"),
}
REPORTED = ("axolotl", "transformers", "trl", "peft", "torch")


def numbers(version: str) -> tuple[int, ...]:
    """(2, 14, 1) of '2.14.1+cu130'; pre-release and local parts dropped."""
    out = []
    for part in re.split(r"[.+]", version):
        m = re.match(r"\d+", part)
        if not m:
            break
        out.append(int(m.group()))
        if m.group() != part:
            break
    return tuple(out)


def installed(name: str) -> str | None:
    if name == "python":
        return ".".join(map(str, sys.version_info[:3]))
    try:
        return md.version(name)
    except md.PackageNotFoundError:
        return None


def range_text(name: str) -> str:
    low, high = SUPPORTED[name]
    return f">={low},<{high}"


def problems(names=tuple(SUPPORTED)) -> list[str]:
    """One line per component outside the supported range (missing counts as outside)."""
    out = []
    for name in names:
        low, high = SUPPORTED[name]
        found = installed(name)
        if found is None:
            out.append(f"{name} is not installed (supported: {name} {range_text(name)})")
        elif not numbers(low) <= numbers(found) < numbers(high):
            out.append(f"{name} {found} is outside the supported range {name} {range_text(name)}")
    return out


def versions() -> str:
    """'axolotl 0.21.0, transformers 5.20.1, ...': what a check ran against."""
    return ", ".join(f"{n} {installed(n) or '(not installed)'}" for n in REPORTED)


def gpu_problems() -> list[str]:
    """CUDA as torch sees it (imports torch: for the pod start, not for cheap checks)."""
    try:
        import torch

        cuda, seen = torch.version.cuda, torch.cuda.is_available() and torch.cuda.device_count()
    except Exception as exc:  # noqa: BLE001 - any failure to load torch is what this check reports
        return [f"torch {installed('torch')} does not load ({type(exc).__name__}: {exc})"]
    if not cuda:
        return [f"torch {installed('torch')} is a CPU build (no CUDA)"]
    if not seen:
        return [f"torch {installed('torch')} (CUDA {cuda}) sees no GPU"]
    return []


def main(argv: list[str]) -> int:
    """The image check at pod start: exit 2 with what was found and what is needed, before any download."""
    found = problems()
    if "--gpu" in argv and not found:
        found = gpu_problems()
    if found:
        print("image check: " + "; ".join(found), file=sys.stderr)
        needs = ", ".join(f"{n} {range_text(n)}" for n in SUPPORTED)
        print(f"  needed: {needs} and a visible GPU", file=sys.stderr)
        return 2
    print(f"image check: python {installed('python')}, {versions()}: supported")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
