"""axolotl's set-up called inside our process (bench/packing.py) leaves the process's output as it found it: no tee
into a debug.log after the call, no colorama hook that writes at exit to a stream closed by then (the
`ValueError: I/O operation on closed file` that ended `make test`), our logging untouched."""

from __future__ import annotations

import subprocess
import sys

from core.paths import REPO

# axolotl's own pieces, as load_cfg and numba run them; sys.stdout is a file closed before exit (pytest's capture)
CHILD = """
import sys
from core.stdio_restore import restored

capture = open(sys.argv[1], "w")
sys.stdout = capture

@restored()
def axolotl_in_process():
    import colorama
    from axolotl.logging_config import configure_logging  # what importing axolotl.cli runs
    from axolotl.utils.dict import DictDefault
    from axolotl.utils.tee import prepare_debug_log

    configure_logging()
    prepare_debug_log(DictDefault(output_dir=sys.argv[2]))  # what load_cfg runs
    colorama.init()  # what numba runs while compiling axolotl's multipack sampler
    print("inside")

axolotl_in_process()
print("after")
sys.stdout = sys.__stdout__
capture.close()
"""


def test_axolotls_stdio_set_up_is_undone_and_exit_writes_nothing(tmp_path):
    capture, out = tmp_path / "capture.txt", tmp_path / "run"
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, str(capture), str(out)], cwd=REPO, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr and "Exception ignored" not in proc.stderr, proc.stderr
    assert capture.read_text().split() == ["inside", "after"]
    assert (out / "debug.log").read_text().split() == ["inside"]  # the tee ended with the call


# in a child: dictConfig closes every handler it finds, pytest's own among them (their streams stay closed after)
LOGGING_CHILD = """
import logging, sys
from core.stdio_restore import restored

root = logging.getLogger()
ours = logging.FileHandler(sys.argv[1], mode="w")  # a handler of ours: dictConfig would close it
root.addHandler(ours)
before = (root.handlers[:], root.level, logging.getLoggerClass())
with restored():
    from axolotl.logging_config import configure_logging

    configure_logging()  # dictConfig: root handlers to stdout, its logger class, Python's warnings to logging
    assert root.handlers != before[0] and logging._warnings_showwarning is not None
assert (root.handlers, root.level, logging.getLoggerClass()) == before
assert logging._warnings_showwarning is None
root.warning("as it was")
print("as it was")
"""


def test_our_logging_is_as_it_was(tmp_path):
    log = tmp_path / "ours.log"
    proc = subprocess.run(
        [sys.executable, "-c", LOGGING_CHILD, str(log)], cwd=REPO, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split()[-3:] == ["as", "it", "was"], proc.stdout
    assert log.read_text().split() == ["as", "it", "was"]  # our handler still open, still writing
