"""`make check RECIPE=x`: the offline preflight (launch/preflight/checks.py); exit 2 when any check fails."""

from __future__ import annotations

import argparse
import sys

from core import cli
from core.settings import Settings
from launch.preflight.checks import HEAVY, THROUGH_AXOLOTL, preflight


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("recipe", nargs="?")
    parser.add_argument("--args", default=None, help="overrides, e.g. '--sequence_len=512' (default: ARGS)")
    ns = parser.parse_args(argv)

    def body(s: Settings) -> int:
        return check(ns.recipe or s.recipe_or_default, s, ns.args if ns.args is not None else s.args)

    return cli.main(body)


def check(recipe: str, s: Settings, args: str | None) -> int:
    """Run every check of `recipe` and print the findings; 2 when one is an error (make check, and make new on
    the recipe it wrote)."""
    done = preflight(recipe, s, args, force=s.force)
    findings = done.findings
    for f in findings:
        print(f)
    if done.stopped:
        print(f"not checked until the errors above are fixed: {HEAVY}")
    if done.reused:  # a note on how the findings were had, not a finding: stderr
        same = "findings of the same config, files and libraries"
        print(f"{THROUGH_AXOLOTL}: {same}, from {done.reused} (FORCE=1 runs them again)", file=sys.stderr)
    errors = sum(f.level == "error" for f in findings)
    warnings = sum(f.level == "warning" for f in findings)
    print(f"{'FAILED' if errors else 'OK'}: {errors} errors, {warnings} warnings")
    return 2 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
