"""The chat's prompt: one line read from the terminal in a way that Ctrl-C always ends, whenever it comes.

input() writes the prompt and then blocks in read(). A SIGINT that arrives between the two (the user sees the prompt
and presses Ctrl-C while the process is still on its way to read(): microseconds, unless a loaded machine
deschedules it right after the write) is taken by Python's C-level handler, which only records it. Nothing then
interrupts the read(), Python never gets to raise KeyboardInterrupt, and the chat waits for a line that never comes
(`make chat` outliving its Ctrl-C). The same happens when the signal is taken by another thread of the process.
Here the wait is a select() on the terminal and on the pipe given to signal.set_wakeup_fd, where the handler writes
a byte for every signal it takes: any Ctrl-C from the moment the pipe is set ends the wait, one that came before
it is raised by Python before the wait starts, and Python raises KeyboardInterrupt as soon as select() returns."""

from __future__ import annotations

import os
import select
import signal
import sys
import threading
from typing import TextIO


def read_line(prompt: str, stdin: TextIO | None = None, out: TextIO | None = None) -> str:
    """input()'s contract (the line without its newline; EOFError at end of input; KeyboardInterrupt on Ctrl-C),
    with the prompt written to `out` (default sys.stdout) and the line read from `stdin` (default sys.stdin)."""
    stdin = stdin or sys.stdin
    out = out or sys.stdout
    if not stdin.isatty() or threading.current_thread() is not threading.main_thread():
        # a pipe or file: no one to press Ctrl-C at a prompt, and Python may hold lines of it already read
        out.write(prompt)
        out.flush()
        line = stdin.readline()
        if not line:
            raise EOFError
        return line.removesuffix("\n")
    wake, woken = os.pipe()
    os.set_blocking(wake, False)
    os.set_blocking(woken, False)
    old = signal.set_wakeup_fd(woken, warn_on_full_buffer=False)
    try:
        out.write(prompt)
        out.flush()
        return _wait_for_line(stdin, wake)
    finally:
        signal.set_wakeup_fd(old)
        os.close(wake)
        os.close(woken)


def _wait_for_line(stdin: TextIO, wake: int) -> str:
    fd = stdin.fileno()
    data = b""
    while not data.endswith(b"\n"):
        ready, _, _ = select.select([fd, wake], [], [])
        if wake in ready:  # a signal: its Python handler runs now (Ctrl-C raises here); any other waits on
            os.read(wake, 512)
        if fd in ready:
            chunk = os.read(fd, 4096)  # the terminal's line discipline hands over one line at most
            if not chunk:  # Ctrl-D: end of input at the start of a line, else the end of this line
                if not data:
                    raise EOFError
                break
            data += chunk
    return data.decode(stdin.encoding or "utf-8", errors="replace").removesuffix("\n")
