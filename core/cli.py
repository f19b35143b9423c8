"""How every command-line entry point runs and ends: library messages known to be harmless go to the command's
log, not the terminal (core/quiet.py); a user error is one message on stderr and exit status 2, never a
traceback; Ctrl-C is a short line and 130. Tracebacks are for bugs."""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Callable
from pathlib import Path

from core import quiet, settings
from core.errors import UserError
from core.settings import Settings


def command_name(body: Callable) -> str:
    """'merge' for tools/export/merge.py's body, 'preflight' for launch/preflight/__main__.py's (run as -m too)."""
    module = getattr(body, "__module__", "") or ""
    if module == "__main__":
        spec = getattr(sys.modules.get("__main__"), "__spec__", None)
        module = spec.name if spec else Path(sys.argv[0]).stem
    parts = [p for p in module.split(".") if p and p != "__main__"]
    return parts[-1] if parts else "command"


class Terminated(BaseException):
    """SIGTERM as an exception, so that finally blocks run (core/child.py ends its child processes in one)."""


def _raise_terminated(signum, frame):
    raise Terminated()


def _exit_on_sigterm():
    """Install the SIGTERM handler for the command's duration; the handler it replaced (None off the main
    thread, where Python allows none)."""
    if threading.current_thread() is not threading.main_thread():
        return None
    return signal.signal(signal.SIGTERM, _raise_terminated)


def main(body: Callable[[Settings], int | None]) -> int:
    """Run a command's body with the settings, read from the environment here, once for the whole command (the
    library takes them as arguments, never reads them itself); return its exit status."""
    quiet.begin(command_name(body))  # before the body's heavy imports print anything
    status = 1  # a bug's traceback
    previous = _exit_on_sigterm()
    s = None
    try:
        s = settings.load()
        status = body(s) or 0
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr, flush=True)
        status = 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr, flush=True)
        status = 130
    except Terminated:
        print("terminated", file=sys.stderr, flush=True)
        status = 143
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
        note = quiet.end(s.outputs if s is not None else None)
        if note and status == 0:  # a failure's one message stays the last thing said
            print(note, file=sys.stderr, flush=True)
    return status


def add_run_arguments(parser) -> None:
    """--run / --recipe for every step after training (defaults: RUN=, RECIPE=, the embedded recipe)."""
    parser.add_argument("--run", default=None, help="a run directory (default: RUN)")
    parser.add_argument(
        "--recipe", default=None, help="its LATEST completed run (default: RECIPE, else the embedded recipe)"
    )


def run_from(ns, s):
    """The one RUN=/RECIPE= resolution of a step's command line (core/rundir.py)."""
    from core import rundir

    run = rundir.resolve(s.outputs, ns.run or s.run, ns.recipe or s.recipe_or_default)
    quiet.log_in(run / "logs")  # the run's log holds the library messages known to be harmless
    return run
