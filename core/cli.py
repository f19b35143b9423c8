"""How every command-line entry point ends: a user error is one message on stderr and exit status 2, never a
traceback; Ctrl-C is a short line and 130. Tracebacks are for bugs."""

from __future__ import annotations

import sys
from collections.abc import Callable

from core.errors import UserError


def main(body: Callable[[], int | None]) -> int:
    """Run a command's body; return its exit status."""
    try:
        return body() or 0
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr, flush=True)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr, flush=True)
        return 130


def add_run_arguments(parser) -> None:
    """--run / --recipe for every step after training (defaults: RUN=, RECIPE=, the embedded recipe)."""
    parser.add_argument("--run", default=None, help="a run directory (default: RUN)")
    parser.add_argument(
        "--recipe", default=None, help="its LATEST completed run (default: RECIPE, else the embedded recipe)"
    )


def run_from(ns, s):
    """The one RUN=/RECIPE= resolution of a step's command line (core/rundir.py)."""
    from core import rundir

    return rundir.resolve(ns.run or s.run, ns.recipe or s.recipe_or_default)
