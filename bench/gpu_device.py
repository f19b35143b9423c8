"""What `make gpu-check` runs on the device (bench/gpu_check.py starts it in the environment it built from the
carry): the machine and disk checks (bench/gpu_checks.py), then each recipe's stages (bench/gpu_stages.py), the
ZeRO-2 step on the smaller model while it is on disk, and the summary against the targets."""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path
from typing import Any

from bench import gpu_checks
from bench.gpu_report import Report
from bench.gpu_stages import CPU_ARGS, RECIPES, attention_path, recipe_stages
from core import settings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--carry", required=True)
    parser.add_argument("--work", required=True)
    parser.add_argument("--report", required=True)
    parser.add_argument("--steps", type=int, default=None)
    parser.add_argument("--recipes", default=",".join(RECIPES))
    parser.add_argument("--cpu", action="store_true")
    ns = parser.parse_args(argv)
    carry, work, report = Path(ns.carry), Path(ns.work), Report(Path(ns.report))
    s = settings.load()  # once, for the whole check
    machine = gpu_checks.environment(report, carry, ns.cpu, s)
    extra = {**(CPU_ARGS if ns.cpu else {}), **(attention_path(machine, ns.cpu)[0] if machine else {})}
    recipes = ns.recipes.split(",")
    gpu_checks.disk(report, carry, work, recipes, ns.cpu, s)
    results: dict[str, Any] = {}
    for i, recipe in enumerate(recipes):
        recipe_stages(report, recipe, ns, carry, work, extra, results, s)
        if i == 0:  # on the smaller model, while it is on disk
            gpu_checks.zero2(report, machine, recipe, ns, work, extra, results, s)
        shutil.rmtree(work / "models" / recipe, ignore_errors=True)  # the next recipe's model needs the disk
    gpu_checks.summary(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
