"""Calling axolotl's set-up inside our process (bench/packing.py's load_cfg) and getting the process back as it was.

Importing axolotl.cli configures logging for the whole process: colorama wraps sys.stdout/sys.stderr and registers
an atexit hook, dictConfig replaces the root handlers, Python's warnings go to logging, new loggers filter. load_cfg
tees sys.stdout/sys.stderr into the run's debug.log (axolotl.utils.tee). numba, compiling axolotl's multipack sampler,
calls colorama.init() again, so the stream that colorama's atexit hook (colorama.initialise.reset_all) inspects at
exit is axolotl's tee over whatever sys.stdout was then. Under pytest that is a capture file closed at the end of the
session; the tee still reports itself open, and interpreter exit ends in `ValueError: I/O operation on closed file`.
restored() undoes all of it when the call returns (and keeps dictConfig from closing the handlers already there): stdio, the tee and its debug log, colorama's state and hook, and
logging. Nothing here imports axolotl or colorama: it restores what they changed."""

from __future__ import annotations

import atexit
import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager

_COLORAMA = ("orig_stdout", "orig_stderr", "wrapped_stdout", "wrapped_stderr", "atexit_done")


def _loggers() -> dict[str, logging.Logger]:
    found = {n: lg for n, lg in logging.Logger.manager.loggerDict.items() if isinstance(lg, logging.Logger)}
    return {**found, "": logging.getLogger()}


def _logging_state() -> dict:
    return {n: (lg.handlers[:], lg.level, lg.propagate, lg.disabled, lg.filters[:]) for n, lg in _loggers().items()}


def _restore_logging(saved: dict, logger_class: type, warnings_captured: bool) -> None:
    for name, lg in _loggers().items():
        # a logger born inside the call sends its records where ours go, as if axolotl had configured nothing
        handlers, level, propagate, disabled, filters = saved.get(name, ([], lg.level, True, False, []))
        lg.handlers[:], lg.propagate, lg.disabled, lg.filters[:] = handlers, propagate, disabled, filters
        lg.setLevel(level)
    logging.setLoggerClass(logger_class)
    logging.captureWarnings(warnings_captured)


@contextmanager
def restored() -> Iterator[None]:
    """A context (or a decorator) that leaves the process's output as it found it."""
    stdout, stderr = sys.stdout, sys.stderr
    tee = sys.modules.get("axolotl.utils.tee")
    tee_before = tee is not None and tee._log_path is not None  # prepared by someone else: theirs to close
    ci = sys.modules.get("colorama.initialise")
    colorama_before = (
        {k: getattr(ci, k) for k in _COLORAMA} if ci else {**dict.fromkeys(_COLORAMA), "atexit_done": False}
    )
    logs, logger_class = _logging_state(), logging.getLoggerClass()
    warnings_captured = logging._warnings_showwarning is not None  # type: ignore[attr-defined]
    # dictConfig closes every handler on logging's list (a FileHandler closed so stays closed): hide ours from it
    handler_list, named = logging._handlerList[:], dict(logging._handlers)  # type: ignore[attr-defined]
    del logging._handlerList[:]  # type: ignore[attr-defined]
    try:
        yield
    finally:
        tee = sys.modules.get("axolotl.utils.tee")
        if tee is not None and not tee_before:
            tee.close_debug_log()  # un-tees stdio, closes debug.log
        ci = sys.modules.get("colorama.initialise")
        if ci is not None:
            if ci.atexit_done and not colorama_before["atexit_done"]:
                atexit.unregister(ci.reset_all)
            for key, value in colorama_before.items():
                setattr(ci, key, value)
        _restore_logging(logs, logger_class, warnings_captured)
        logging._handlerList[:0] = handler_list  # type: ignore[attr-defined]
        logging._handlers.update(named)  # type: ignore[attr-defined]
        sys.stdout, sys.stderr = stdout, stderr
