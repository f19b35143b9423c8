"""The wheels of the GPU carry (bench/carry.py): exactly the names of bench/gpu_carry.txt, none of the GPU
machine's own (bench/gpu_machine.txt), for its Python and platform, through `pip download` (from the index, or from
a local folder of wheels with --find-links: the tests, and a machine without the index).

Versions: axolotl's is the newest whose declared torch range (its wheel's Requires-Dist) accepts the machine's
torch, read from each candidate's metadata, newest first. Every other name gets the newest release that satisfies
what the carried wheels declare for it (markers evaluated for the target); a carried wheel's requirement that a
later round cannot meet is listed, never hidden. What the carried wheels declare about the machine's own packages
(axolotl 0.19.0 pins transformers 5.16.1; the machine has 5.17.0) is listed too: the carry installs --no-deps and
replaces nothing, so the check runs on the machine's versions and the report says which.
A pure-Python project published only as an sdist is built into a wheel here (pip wheel --no-deps)."""

from __future__ import annotations

import fnmatch
import hashlib
import re
import subprocess
import sys
import zipfile
from email.parser import Parser
from pathlib import Path
from typing import Any

from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.version import Version

from core.errors import UserError, Where

HERE = Path(__file__).resolve().parent
CARRY_LIST = HERE / "gpu_carry.txt"
MACHINE_LIST = HERE / "gpu_machine.txt"
PLATFORMS = ("manylinux_2_28_x86_64", "manylinux_2_24_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64",
             "linux_x86_64")  # fmt: skip
AXOLOTL_CANDIDATES = 6  # newest releases whose metadata is read


def norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def carry_list(path: Path = CARRY_LIST) -> dict[str, dict[str, Any]]:
    """{name: {"drop": [globs], "keep_cuda": bool}} in file order."""
    out: dict[str, dict[str, Any]] = {}
    for n, raw in enumerate(path.read_text().splitlines(), 1):
        words = raw.split("#")[0].split()
        if not words:
            continue
        rule: dict[str, Any] = {"drop": [], "keep_cuda": False, "line": n}
        for word in words[1:]:
            if word.startswith("drop="):
                rule["drop"] += word.removeprefix("drop=").split(",")
            elif word == "keep-cuda":
                rule["keep_cuda"] = True
            else:
                raise UserError(f"unknown carry rule '{word}'", Where(path, n), "drop=<glob>[,<glob>] or keep-cuda")
        out[norm(words[0])] = rule
    return out


def machine_list(path: Path = MACHINE_LIST) -> tuple[dict[str, str | None], dict[str, str]]:
    """({name: version or None}, {"read": date, "python": ..., "cuda": ...}) of the GPU machine."""
    names: dict[str, str | None] = {}
    facts: dict[str, str] = {}
    for raw in path.read_text().splitlines():
        m = re.match(r"#\s*(read|python|cuda):\s*(\S+)", raw)
        if m:
            facts[m.group(1)] = m.group(2)
        line = raw.split("#")[0].strip()
        if line:
            name, _, version = line.partition("==")
            names[norm(name)] = version or None
    return names, facts


def target_env(python: str) -> dict[str, str]:
    """Marker values of the target (Linux x86_64, CPython `python`)."""
    return {"python_version": ".".join(python.split(".")[:2]), "python_full_version": python, "sys_platform": "linux",
            "platform_system": "Linux", "platform_machine": "x86_64", "os_name": "posix",
            "implementation_name": "cpython", "platform_python_implementation": "CPython", "extra": ""}  # fmt: skip


def metadata(wheel: Path) -> dict[str, Any]:
    with zipfile.ZipFile(wheel) as zf:
        name = next(n for n in zf.namelist() if n.endswith(".dist-info/METADATA"))
        msg = Parser().parsestr(zf.read(name).decode("utf-8", "replace"))
    return {"name": norm(msg["Name"]), "version": msg["Version"], "requires": msg.get_all("Requires-Dist") or []}


def requirements(meta: dict[str, Any], env: dict[str, str]) -> list[Requirement]:
    out = []
    for raw in meta["requires"]:
        req = Requirement(raw)
        if req.marker is None or req.marker.evaluate(env):
            out.append(req)
    return out


class Pip:
    """pip download for the target; `find_links` set: offline from that folder only."""

    def __init__(self, python: str, find_links: Path | None = None):
        self.python, self.find_links = python, find_links

    def _run(self, *args: str) -> subprocess.CompletedProcess:
        index = ["--no-index", "--find-links", str(self.find_links)] if self.find_links else []
        cmd = [sys.executable, "-m", "pip", "--disable-pip-version-check", *args, *index]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=900)

    def tags(self) -> list[str]:
        return [*(f"--platform={p}" for p in PLATFORMS), f"--python-version={self.python}", "--implementation=cp"]

    def versions(self, name: str) -> list[str]:
        got = self._run("index", "versions", name, *self.tags(), "--only-binary=:all:")
        m = re.search(r"Available versions: (.+)", got.stdout)
        if got.returncode != 0 or not m:
            raise UserError(f"no version of {name} for Python {self.python} ({got.stderr.strip()[-300:]})")
        return [v.strip() for v in m.group(1).split(",")]

    def download(self, reqs: list[str], folder: Path) -> list[Path]:
        """Each requirement's wheel into `folder` (an sdist is built into a wheel); returns the wheels."""
        folder.mkdir(parents=True, exist_ok=True)
        before = set(folder.iterdir())
        got = self._run("download", "-q", "--no-deps", *self.tags(), "-d", str(folder), *reqs)
        if got.returncode != 0:
            raise UserError(f"pip download failed for {' '.join(reqs)}: {got.stderr.strip()[-600:]}")
        for sdist in [p for p in set(folder.iterdir()) - before if not p.name.endswith(".whl")]:
            made = self._run("wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(folder), str(sdist))
            if made.returncode != 0:
                raise UserError(f"{sdist.name} has no wheel and does not build: {made.stderr.strip()[-300:]}")
            sdist.unlink()
        return [p for p in set(folder.iterdir()) - before if p.name.endswith(".whl")]


def choose_axolotl(pip: Pip, torch: str, folder: Path) -> tuple[Path, list[dict[str, str]]]:
    """The newest axolotl whose declared torch range accepts `torch`, and what each candidate declared."""
    base = Version(torch).base_version
    seen = []
    for version in pip.versions("axolotl")[:AXOLOTL_CANDIDATES]:
        [wheel] = pip.download([f"axolotl=={version}"], folder / ".candidates") or [None]
        meta = metadata(wheel)
        spec = next(
            (str(r.specifier) for r in requirements(meta, target_env(pip.python)) if norm(r.name) == "torch"), ""
        )
        seen.append({"version": version, "torch": spec or "(none declared)"})
        if SpecifierSet(spec).contains(base, prereleases=True):
            return wheel, seen
    raise UserError(f"no axolotl release among the newest {AXOLOTL_CANDIDATES} accepts torch {torch}: {seen}")


def trim(wheel: Path, rule: dict[str, Any], cuda: str) -> dict[str, Any] | None:
    """Leave out the files `rule` drops (and their RECORD lines); returns what was left out, or None."""
    keep = f"cuda{cuda.replace('.', '')}"
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()

        def dropped(n: str) -> bool:
            if any(fnmatch.fnmatch(n, g) for g in rule["drop"]):
                return True
            lib = re.search(r"lib\w+_(cuda\d+|rocm\d+|xpu\d+)\.so$", n)
            return bool(rule["keep_cuda"] and lib and lib.group(1) != keep)

        gone = [n for n in names if dropped(n)]
        if not gone:
            return None
        before = wheel.stat().st_size
        out = wheel.with_suffix(".trim")
        with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
            for n in names:
                if n in gone:
                    continue
                data = zf.read(n)
                if n.endswith(".dist-info/RECORD"):
                    kept = [ln for ln in data.decode().splitlines() if ln.split(",")[0] not in gone]
                    data = ("\n".join(kept) + "\n").encode()
                dst.writestr(zf.getinfo(n), data)
    out.replace(wheel)
    return {"left_out": sorted(gone), "bytes_before": before, "bytes_after": wheel.stat().st_size}


def pick(pip: Pip, name: str, allowed: SpecifierSet, chosen: dict[str, Path], folder: Path) -> Path:
    """The newest release of `name` within `allowed` whose own requirements hold for the wheels chosen so far."""
    env = target_env(pip.python)
    have = {n: metadata(w)["version"] for n, w in chosen.items()}
    for w in chosen.values():  # what a chosen wheel pins exactly (axolotl's ==) counts as had already
        for r in requirements(metadata(w), env):
            exact = [sp.version for sp in r.specifier if sp.operator == "=="]
            if exact and norm(r.name) not in have:
                have[norm(r.name)] = exact[0]
    tried = []
    for version in [v for v in pip.versions(name) if allowed.contains(v, prereleases=True)][:12]:
        [wheel] = pip.download([f"{name}=={version}"], folder / ".candidates") or [None]
        bad = [str(r) for r in requirements(metadata(wheel), env)
               if norm(r.name) in have and not r.specifier.contains(have[norm(r.name)], True)]  # fmt: skip
        if not bad:
            return wheel.replace(folder / wheel.name)
        tried.append(f"{version} ({', '.join(bad)})")
    raise UserError(f"no release of {name} within '{allowed}' fits the carried wheels; tried {'; '.join(tried)}")


def collect(folder: Path, machine_torch: str, machine: dict[str, str | None], python: str, cuda: str,
            find_links: Path | None = None, names: dict[str, dict[str, Any]] | None = None) -> dict[str, Any]:  # fmt: skip
    """The carry's wheels into `folder`, in the carry list's order (each fitting those before it); returns what
    the manifest says about them."""
    names = names if names is not None else carry_list()
    overlap = sorted(set(names) & set(machine))
    if overlap:
        raise UserError(f"the carry list names packages the GPU machine has: {', '.join(overlap)}", Where(CARRY_LIST))
    pip, env = Pip(python, find_links), target_env(python)
    folder.mkdir(parents=True, exist_ok=True)
    axolotl, candidates = choose_axolotl(pip, machine_torch, folder)
    wheels = {"axolotl": axolotl.replace(folder / axolotl.name)}

    def allowed(name: str, among: dict[str, Path]) -> SpecifierSet:
        spec = SpecifierSet()
        for wheel in among.values():
            spec &= SpecifierSet(
                ",".join(str(r.specifier) for r in requirements(metadata(wheel), env) if norm(r.name) == name)
            )
        return spec

    # one download of the newest release of each name within what axolotl declares, then each wheel whose own
    # requirements the others do not meet is picked again, older (a few pip calls in all, not one per name)
    rest = [n for n in names if n not in wheels]
    for wheel in pip.download([f"{n}{allowed(n, wheels)}" for n in rest], folder) if rest else []:
        wheels[metadata(wheel)["name"]] = wheel
    for _ in range(4):  # a wheel outside what the others declare for it is fetched again within that
        stale = {}
        for n, w in wheels.items():
            spec = allowed(n, {k: v for k, v in wheels.items() if k != n})
            if n != "axolotl" and not spec.contains(metadata(w)["version"], True):
                stale[n] = spec
        if not stale:
            break
        for n, spec in stale.items():
            wheels.pop(n).unlink()
            try:
                [wheels[n]] = pip.download([f"{n}{spec}"], folder)
            except UserError:  # no release fits both: an older release of what asks for it (one axolotl does not pin)
                wheels[n] = pick(
                    pip, n, allowed(n, {"axolotl": wheels["axolotl"]}), {"axolotl": wheels["axolotl"]}, folder
                )
                for r in [k for k, w in wheels.items() if k not in ("axolotl", n) and any(
                        norm(q.name) == n and not q.specifier.contains(metadata(wheels[n])["version"], True)
                        for q in requirements(metadata(w), env))]:  # fmt: skip
                    wheels.pop(r).unlink()
                    wheels[r] = pick(pip, r, allowed(r, {k: v for k, v in wheels.items() if k != r}), wheels, folder)
    unmet, differs = [], []
    versions = {n: metadata(w)["version"] for n, w in wheels.items()}
    for n, w in wheels.items():
        for req in requirements(metadata(w), env):
            dep = norm(req.name)
            if dep in versions and not req.specifier.contains(versions[dep], True):
                unmet.append(f"{n} {versions[n]} requires {req}, carried {versions[dep]}")
            elif dep in machine and machine[dep] and not req.specifier.contains(machine[dep].split("+")[0], True):
                differs.append(f"{n} {versions[n]} declares {req}; the machine has {machine[dep]}")
    trimmed = {}
    for n, w in wheels.items():
        cut = trim(w, names[n], cuda) if n in names else None
        if cut:
            trimmed[w.name] = cut
    return {
        "axolotl": {"chosen": versions["axolotl"], "for_torch": machine_torch, "candidates": candidates},
        "wheels": {
            w.name: {
                "name": n,
                "version": versions[n],
                "bytes": w.stat().st_size,
                "sha256": hashlib.sha256(w.read_bytes()).hexdigest(),
            }
            for n, w in wheels.items()
        },  # fmt: skip
        "trimmed": trimmed,
        "unmet": sorted(set(unmet)),
        "differs_from_machine": sorted(set(differs)),
        "python": python,
        "source": f"--find-links {find_links}" if find_links else "the package index",
    }
