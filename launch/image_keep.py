"""Image-mode set-up (launch/setup.sh, SETUP_MODE=image): inside axolotl's image, what the image holds is kept.

Standard library only: it runs in the image's Python before anything of ours is installed.

- `keep LOCK`: the constraints pip installs under. Every distribution the image already holds is pinned to its
  installed version (the lock's line for it is dropped), so pip can only add what is missing. The closure of the
  installed axolotl's own requirements (read from its metadata, extras it was installed with included) is named
  on stderr: that is what the image's axolotl needs, and the reason nothing installed may move.
- `requirements REQ`: the requirements, with axolotl's and torch's pins widened to the supported range (the image's
  axolotl may be another supported version than the lock's: `keep` pins it, and the lock's `==` would clash).
- `check-report REPORT`: pip's `install --dry-run --report` must install nothing that is already installed.
- `check-after KEEP`: after the install, every version pinned by `keep` is still the installed one.
"""

from __future__ import annotations

import importlib.metadata as md
import json
import re
import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a file by launch/setup.sh, in the image's Python: the repo root on the path
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from core.stack import SUPPORTED  # standard library only, like this file

# what an axolotl image provides beside axolotl's declared requirements (built into the image, not declared)
IMAGE_BUILT = ("torch", "flash-attn", "deepspeed", "triton", "xformers", "bitsandbytes")


def _lines(path: str) -> list[str]:
    with open(path, encoding="utf-8") as fh:
        return fh.read().splitlines()


def norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def installed() -> dict[str, str]:
    """name -> version of what imports here: the first on sys.path wins, as it does for an import."""
    found: dict[str, str] = {}
    for d in md.distributions():
        if d.metadata["Name"]:
            found.setdefault(norm(d.metadata["Name"]), d.version)
    return found


def _requirement(spec: str) -> tuple[str, set[str], str]:
    """(name, extras, marker) of a Requires-Dist line."""
    head, _, marker = spec.partition(";")
    m = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:\[([^\]]*)\])?", head)
    if not m:
        return "", set(), ""
    extras = {norm(e) for e in (m.group(2) or "").split(",") if e.strip()}
    return norm(m.group(1)), extras, marker.strip()


def _marker_applies(marker: str, extras: set[str]) -> bool:
    """Markers on this machine: an `extra == "x"` clause applies when x was asked for; platform clauses are
    judged by what is installed (a requirement whose marker excludes this platform is simply not installed)."""
    wanted = re.findall(r"""extra\s*==\s*["']([^"']+)["']""", marker)
    return not wanted or any(norm(w) in extras for w in wanted)


def closure(root: str = "axolotl", extras: tuple[str, ...] = ("deepspeed",)) -> dict[str, str]:
    """Installed distributions that `root` (with `extras`) needs, transitively: name -> installed version."""
    have = installed()
    if norm(root) not in have:
        return {}
    seen: dict[str, str] = {}
    todo = [(norm(root), {norm(e) for e in extras})]
    while todo:
        name, asked = todo.pop()
        if name in seen or name not in have:
            continue
        seen[name] = have[name]
        for spec in md.requires(name) or []:
            dep, dep_extras, marker = _requirement(spec)
            if dep and dep in have and _marker_applies(marker, asked):
                todo.append((dep, dep_extras))
    return seen


def keep(lock_path: str) -> int:
    have = installed()
    for line in _lines(lock_path):
        text = line.strip()
        name = re.split(r"[\s=<>!~\[;]", text, maxsplit=1)[0]
        if text and not text.startswith("#") and norm(name) in have:
            continue  # the image's own version below replaces the lock's
        print(line.rstrip())
    for name, version in sorted(have.items()):
        print(f"{name}=={version}")
    needs = closure()
    built = {n: have[n] for n in map(norm, IMAGE_BUILT) if n in have}
    print(
        f"the image provides (kept): axolotl {have.get('axolotl', '(none)')} with {len(needs)} package(s) it needs, "
        + ", ".join(f"{n} {v}" for n, v in sorted(built.items()))
        + f"; {len(have)} installed in all, none replaced",
        file=sys.stderr,
    )
    return 0


def requirements(req_path: str) -> int:
    """A requirement on a component of the supported stack (axolotl, torch) asks for the supported range, not the
    lock's exact version: the image's own, kept by `keep`, is what runs. Every other requirement stays as written,
    so one the image cannot satisfy is refused by pip's dry run."""
    for line in _lines(req_path):
        text = line.strip()
        name, _, marker = _requirement(text) if text and not text.startswith("#") else ("", set(), "")
        if name in SUPPORTED:
            head = re.match(r"\s*[A-Za-z0-9][A-Za-z0-9._-]*\s*(\[[^\]]*\])?", text)
            low, high = SUPPORTED[name]
            print(f"{name}{head.group(1) or ''}>={low},<{high}" + (f"; {marker}" if marker else ""))
        else:
            print(line.rstrip())
    return 0


def check_report(report_path: str) -> int:
    have = installed()
    with open(report_path, encoding="utf-8") as fh:
        install = [(i["metadata"]["name"], i["metadata"]["version"]) for i in json.load(fh).get("install", [])]
    changed = [f"{n} {have[norm(n)]} -> {v}" for n, v in install if norm(n) in have]
    if changed:
        print("error: pip would replace what the image provides: " + ", ".join(changed), file=sys.stderr)
        return 2
    print(f"pip --dry-run: {len(install)} missing package(s) to install, none of the image's replaced")
    return 0


def check_after(keep_path: str) -> int:
    now = installed()
    kept = {}
    for line in _lines(keep_path):
        name, sep, version = line.strip().partition("==")
        if sep and not name.startswith("#"):
            kept[norm(name)] = version
    moved = [f"{n} {v} -> {now.get(n)}" for n, v in kept.items() if n in now and now[n] != v]
    if moved:
        print("error: set-up changed what the image provides: " + ", ".join(moved), file=sys.stderr)
        return 2
    return 0


def main(argv: list[str]) -> int:
    commands = {"keep": keep, "requirements": requirements, "check-report": check_report, "check-after": check_after}
    if len(argv) != 2 or argv[0] not in commands:
        print(
            "usage: image_keep.py keep LOCK | requirements REQ | check-report REPORT | check-after KEEP",
            file=sys.stderr,
        )
        return 2
    return commands[argv[0]](argv[1])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
