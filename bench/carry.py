"""`make gpu-carry OUT=<dir>`: the one folder `make gpu-check` needs on a GPU machine with no network, beside this
repo's code: the wheels of what the machine lacks (bench/carry_wheels.py: bench/gpu_carry.txt, measured against
bench/gpu_machine.txt), the Brie conversations (research-use data from ../shared/brie: copied into the carry, never
committed), and the configs and tokenizers of the check's recipes (bench/carry_models.py, what is real and what
stands in). MANIFEST.json says what came from where. The folder must stay within CARRY_MIB, so that it and the
code fit in what can be carried to the GPU machine (64 MiB); the build fails, naming the biggest files, when not.
Runs where the package index is reachable (--find-links <dir> builds it offline from a folder of wheels)."""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import carry_models, carry_wheels
from core import cli
from core.errors import UserError, Where
from core.paths import REPO
from core.settings import Settings

CARRY_MIB = 56
RECIPES = ("qwen25-3b-instruct-brie", "llama31-8b-instruct")
BRIE = REPO.parent / "shared" / "brie"
BRIE_FILES = ("sft.train.sample.jsonl", "sft.val.jsonl")
MANIFEST = "MANIFEST.json"


def size_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def biggest(folder: Path, n: int = 6) -> str:
    files = sorted((p for p in folder.rglob("*") if p.is_file()), key=lambda p: -p.stat().st_size)[:n]
    return ", ".join(f"{p.relative_to(folder)} {p.stat().st_size / 2**20:.1f} MiB" for p in files)


def build(out: Path, brie: Path = BRIE, find_links: Path | None = None, machine_torch: str | None = None,
          python: str | None = None, recipes=RECIPES, names: dict | None = None,
          tokenizers: dict[str, Path] | None = None, *, cache: Path) -> dict[str, Any]:  # fmt: skip
    """Build the carry into `out` (replaced whole only once complete); returns its manifest. `cache`:
    AFFINAGE_CACHE, where fetched model facts are kept."""
    missing = [str(brie / f) for f in BRIE_FILES if not (brie / f).is_file()]
    if missing:
        raise UserError(f"the Brie conversations are absent: {', '.join(missing)}", Where(brie))
    machine, facts = carry_wheels.machine_list()
    torch = machine_torch or machine.get("torch") or ""
    if not torch:
        raise UserError("the GPU machine's torch version is unknown", Where(carry_wheels.MACHINE_LIST))
    out.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".carry-", dir=out.parent))
    try:
        cuda = facts.get("cuda", "13.0")
        wheels = carry_wheels.collect(
            work / "wheels", torch, machine, python or facts.get("python", "3.12"), cuda, find_links, names
        )
        shutil.rmtree(work / "wheels" / ".candidates", ignore_errors=True)
        (work / "data" / "brie").mkdir(parents=True)
        for f in BRIE_FILES:
            shutil.copyfile(brie / f, work / "data" / "brie" / f)
        models = {
            r: carry_models.build(r, work / "models" / r, cache, find_links, (tokenizers or {}).get(r)) for r in recipes
        }
        total = size_bytes(work)
        manifest = {
            "built": datetime.now(UTC).isoformat(timespec="seconds"),
            "machine_list": {"file": "bench/gpu_machine.txt", **facts, "torch": torch},
            "carry_list": "bench/gpu_carry.txt",
            **wheels,
            "data": {"brie": list(BRIE_FILES), "source": str(brie), "note": "research-use data; never committed"},
            "models": models,
            "bytes": total,
            "limit_mib": CARRY_MIB,
        }
        (work / MANIFEST).write_text(json.dumps(manifest, indent=2))  # "bytes": everything but this file
        if size_bytes(work) > CARRY_MIB * 2**20:
            raise UserError(
                f"the carry is {size_bytes(work) / 2**20:.1f} MiB, over its {CARRY_MIB} MiB; biggest: {biggest(work)}",
                Where(carry_wheels.CARRY_LIST),
                "trim a wheel (drop=, keep-cuda) or carry less",
            )
        if out.exists():
            shutil.rmtree(out)
        work.rename(out)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return manifest


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", nargs="?", default="", help="the carry folder (OUT=)")
    parser.add_argument("--find-links", default=None, help="build offline from this folder of wheels")
    parser.add_argument("--brie", default=str(BRIE), help="the folder holding the Brie conversations")
    ns = parser.parse_args(argv)

    def body(s: Settings) -> None:
        if not ns.out:
            raise UserError("OUT is not set", Where(key="OUT"), "make gpu-carry OUT=<dir>")
        out = Path(ns.out).expanduser().resolve()
        m = build(out, Path(ns.brie), Path(ns.find_links).resolve() if ns.find_links else None, cache=s.cache)
        print(
            f"carry: {out} {m['bytes'] / 2**20:.1f} MiB (limit {CARRY_MIB}): {len(m['wheels'])} wheels "
            f"(axolotl {m['axolotl']['chosen']} for torch {m['axolotl']['for_torch']}), the Brie conversations, "
            f"{len(m['models'])} model configs and tokenizers"
        )
        for line in m["unmet"] + m["differs_from_machine"]:
            print(f"note: {line}")
        print(f"then, on the GPU machine: make gpu-check CARRY={out}")

    return cli.main(body)


if __name__ == "__main__":
    sys.exit(main())
