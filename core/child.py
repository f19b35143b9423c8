"""Run a child process (axolotl's trainer, torchrun, llama.cpp's converter) with all of its output in a log file.
The screen gets its progress as it comes, but never a traceback: each one is replaced by one line naming the
exception and the log; library messages known to be harmless (core/harmless.py) are the log's only. When the child
fails, `Outcome.errors` are its last meaningful error lines (the exception that ended it, not the launcher's wrapper
around it), for the one error message a user reads."""

from __future__ import annotations

import re
import subprocess
import sys
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from core import quiet
from core.errors import UserError, Where
from core.paths import REPO

# torchrun / accelerate prefix each rank's lines ("[rank0]: ", "[default1]:")
RANK_PREFIX = re.compile(r"^\[(?:rank|default)?\d+\]:\s?")
TRACEBACK = "Traceback (most recent call last)"
CHAINED = (
    "During handling of the above exception, another exception occurred:",
    "The above exception was the direct cause of the following exception:",
)
FRAME_START = (" ", "\t", "│", "╭", "╰", "┃", "^", "~")  # indented frames, rich's boxes, 3.11's carets
# an exception that only says a child (rank) failed: the meaningful one is the rank's own, printed before it
WRAPPERS = ("ChildFailedError", "CalledProcessError", "SystemExit", "KeyboardInterrupt")
ERRORISH = re.compile(r"\b(error|exception|fatal|failed|errno)\b", re.IGNORECASE)
TAIL_LINES = 400
MAX_SUMMARY = 8
TRAILING = 4  # lines after the last exception that still belong to its message when the output ends there
MAX_CHARS = 400


def _plain(line: str) -> str:
    return RANK_PREFIX.sub("", line.rstrip("\r\n"))


def exception_type(line: str) -> str:
    """'torch.x.ChildFailedError: ...' -> 'ChildFailedError'."""
    head = line.split(":", 1)[0].strip()
    return head.rsplit(".", 1)[-1]


@dataclass
class Digest:
    """Reads a child's output line by line: what to show on the screen, and the errors it ended with."""

    log_name: str = "the log"
    exceptions: list[list[str]] = field(default_factory=list)  # per traceback: its exception line(s)
    tail: deque = field(default_factory=lambda: deque(maxlen=TAIL_LINES))
    after: list[str] = field(default_factory=list)  # lines printed after the last exception line (a few at most)
    _state: str = "out"  # out | frames | exception

    def feed(self, line: str) -> str | None:
        """The line to show on the screen (None: it belongs to a traceback, kept in the log only)."""
        text = _plain(line)
        stripped = text.strip()
        if stripped:
            self.tail.append(text)
        if TRACEBACK in text:
            if self._state != "frames":  # a new traceback (in "frames": the next link of a chain)
                self.exceptions.append([])
            self._state = "frames"
            self.after = []
            return None
        if self._state == "out":
            if stripped and self.exceptions and len(self.after) <= TRAILING:
                self.after.append(stripped[:MAX_CHARS])
            return line
        if stripped in CHAINED:  # the chain's last exception is the one that ended it
            self.exceptions[-1] = []
            self._state = "frames"
            return None
        if self._state == "frames":
            if not stripped or text.startswith(FRAME_START):
                return None
            self.exceptions[-1] = [stripped[:MAX_CHARS]]
            self._state = "exception"
            return f"  {self.exceptions[-1][0]}  (traceback in {self.log_name})\n"
        # after the exception line: blank lines, and an indented continuation (a pydantic error's fields)
        if not stripped:
            return None
        if text.startswith((" ", "\t")):
            if len(self.exceptions[-1]) < 4:
                self.exceptions[-1].append(stripped[:MAX_CHARS])
            return None
        self._state = "out"
        self.after = [stripped[:MAX_CHARS]]
        return line

    def summary(self, lines: int = 2) -> list[str]:
        """The last meaningful error lines: the last distinct exceptions other than a launcher's wrapper (the
        wrapper when nothing else was raised); without a traceback, the last lines that say error/failed; else
        the last lines printed."""
        found = [list(e) for e in self.exceptions if e]
        if found and found[-1] == self.exceptions[-1] and len(self.after) <= TRAILING:
            found[-1] += self.after  # the output ended right after it: a message of several lines
        own = [e for e in found if exception_type(e[0]) not in WRAPPERS] or found
        if own:
            picked: list[list[str]] = []
            for e in reversed(own):  # every rank prints the same exception: once is enough
                if e not in picked:
                    picked.append(e)
                if len(picked) == lines:
                    break
            return [line for e in reversed(picked) for line in e][:MAX_SUMMARY]
        errorish = [t.strip()[:MAX_CHARS] for t in self.tail if ERRORISH.search(t) and TRACEBACK not in t]
        picked_lines = errorish or [t.strip()[:MAX_CHARS] for t in self.tail]
        return list(dict.fromkeys(picked_lines[-lines:]))


def digest_text(lines: Iterable[str], log_name: str = "the log") -> Digest:
    """A Digest of output already written (a step's log file)."""
    d = Digest(log_name)
    for line in lines:
        d.feed(line)
    return d


@dataclass
class Outcome:
    returncode: int
    log: Path
    errors: list[str]  # the last meaningful error lines when it failed
    tail: list[str] = field(default_factory=list)  # its last lines printed (rank prefixes removed)

    def message(self, what: str) -> str:
        """'<what> exited with status N:' and the error lines, one per line."""
        said = "".join(f"\n  {e}" for e in self.errors)
        return f"{what} exited with status {self.returncode}{':' if said else ''}{said}"

    def error(self, what: str, hint: str | None = None) -> UserError:
        return UserError(self.message(what), Where(self.log), hint or f"the full output is in {self.log}")


def _copy_output(proc, fh, show, digest: Digest, harmless, log: Path) -> None:
    logging = True
    for line in proc.stdout:
        # a listed message is neither shown nor taken for the error that ended a failed child: the log keeps it
        shown = None if harmless.harmless(_plain(line)) else digest.feed(line)
        if shown is not None:
            show(shown)
        if logging:
            try:
                fh.write(line)
            except OSError as exc:  # disk full: keep the child's output on the screen, stop the file
                logging = False
                show(f"note: stopped writing {log} ({exc.strerror})\n")
    try:
        fh.flush()
    except OSError:
        pass


def stop_tree(pid: int, grace_s: float = 20.0) -> None:
    """End a child and every process under it (axolotl's CLI starts torchrun, which starts the ranks): SIGTERM to
    each, SIGKILL to what is left after grace_s. A terminal's Ctrl-C reaches them all already; a SIGTERM sent to
    our process alone (a pod's stop, a supervisor, a timeout) did not, and the trainer ran on."""
    import psutil

    try:
        root = psutil.Process(pid)
        tree = [*root.children(recursive=True), root]
    except psutil.NoSuchProcess:
        return
    for p in tree:
        try:
            p.terminate()
        except psutil.NoSuchProcess:
            pass
    _, alive = psutil.wait_procs(tree, timeout=grace_s)
    for p in alive:
        try:
            p.kill()
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(alive, timeout=5)


def run(
    argv: Sequence[str],
    log: Path,
    env: dict[str, str] | None = None,
    cwd: Path = REPO,
    show: Callable[[str], None] | None = None,
    log_name: str | None = None,
) -> Outcome:
    """Run `argv`, appending everything it prints to `log`; its lines go to `show` (default: stdout) except its
    tracebacks. A full disk stops the log file, never the child."""
    show = show or (lambda s: (sys.stdout.write(s), sys.stdout.flush()))
    log = Path(log)
    log.parent.mkdir(parents=True, exist_ok=True)
    digest = Digest(log_name or str(log))
    harmless = quiet.ChildFilter()
    with open(log, "a", encoding="utf-8", errors="replace") as fh:
        proc = subprocess.Popen(
            list(argv),
            cwd=cwd,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
            bufsize=1,
        )
        assert proc.stdout is not None
        try:
            _copy_output(proc, fh, show, digest, harmless, log)
        except KeyboardInterrupt:  # a terminal's Ctrl-C reached the child too: its own shutdown comes first
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                pass
            stop_tree(proc.pid)
            raise
        except BaseException:  # SIGTERM (core/cli.py), a bug: the child and its children end with us
            stop_tree(proc.pid)
            raise
        rc = proc.wait()
    return Outcome(rc, log, digest.summary() if rc != 0 else [], list(digest.tail))
