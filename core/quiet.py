"""Quiet terminals: library messages known to be harmless go to the command's log, not the terminal.

core/harmless.py's KNOWN lists each one with where it comes from and why it is harmless, matched precisely: the
logger that emits it and its whole message, or a Python warning's category, file and message, or llama.cpp's own
log. Everything else stays on the terminal. Where the library has a switch we use it: a filter on that one logger, a wrapper around
warnings.showwarning, llama-cpp-python's log callback (llama_log_set). Child processes we do not write (axolotl,
torchrun) are filtered on the text they print (ChildFilter, used by core/child.py): their full output is in the
run's log already.

A command (core/cli.py main) begins a sink; the run's log once the command knows its run (log_to), else at the
end OUTPUTS/logs/<command>.log, said once. Outside a command everything passes (in-process tests)."""

from __future__ import annotations

import ctypes
import importlib.abc
import importlib.util
import logging
import sys
import threading
import warnings
from datetime import UTC, datetime
from pathlib import Path

from core.harmless import KNOWN, Harmless, text_entry, warning_entry


def _when() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S")


class _Sink:
    """Where one command's diverted messages go: held until the command names its log (or ends)."""

    def __init__(self, name: str):
        self.name, self.path, self.pending, self.count, self.headed = name, None, [], 0, False
        self.command = " ".join([name, *sys.argv[1:]])
        self.outer: _Sink | None = None
        self.shown = warnings.showwarning  # the warnings hook this command found (ours calls it for the rest)
        self.lock = threading.Lock()

    def write(self, what: str, text: str) -> None:
        line = f"[{_when()}] {what}: {text.rstrip()}\n"
        with self.lock:
            self.count += 1
            self.pending.append(line)
            if self.path is not None:
                self._flush()

    def _flush(self) -> None:
        """The held lines to the log, under a header naming the command the first time (a command that diverted
        nothing writes nothing)."""
        header = [] if self.headed else [f"== {_when()} known-harmless library messages of: {self.command}\n"]
        try:
            with open(self.path, "a", encoding="utf-8") as fh:
                fh.writelines([*header, *self.pending])
        except OSError:  # an unwritable log loses nothing: the lines go where they would have gone
            sys.stderr.writelines(self.pending)
            self.path = None  # what comes next is held for the fallback at the end
        self.headed, self.pending = True, []

    def to(self, path: Path) -> None:
        with self.lock:
            try:
                Path(path).parent.mkdir(parents=True, exist_ok=True)
            except OSError:  # no log folder: the messages stay held, for the fallback at the end
                return
            if self.path != Path(path):
                self.path, self.headed = Path(path), False
            if self.pending:
                self._flush()


_active: _Sink | None = None
_installed = False


def _divert(what: str, text: str) -> bool:
    sink = _active
    if sink is not None:
        sink.write(what, text)
    return sink is not None


class _LoggerFilter(logging.Filter):
    """On one library logger: a record of a listed message goes to the sink instead of the logger's handlers."""

    def __init__(self, entries: list[Harmless]):
        super().__init__()
        self.entries = entries

    def filter(self, record: logging.LogRecord) -> bool:
        if _active is None:
            return True
        try:
            text = record.getMessage()
        except (TypeError, ValueError):  # a malformed record is the library's to report
            return True
        listed = any(e.pattern.fullmatch(text) for e in self.entries)
        return not (listed and _divert(f"{record.name} {record.levelname}", text))


def _showwarning(message, category, filename, lineno, file=None, line=None):
    """warnings.showwarning while a command runs: a listed warning to the sink, any other to the hook before ours."""
    sink = _active
    if sink is not None and warning_entry(category, filename, str(message)):
        _divert(f"{category.__name__} {filename}:{lineno}", str(message))
        return
    shown = sink.shown if sink is not None else warnings._showwarning_orig  # type: ignore[attr-defined]
    shown(message, category, filename, lineno, file, line)


class ChildFilter:
    """The lines a child process prints that are listed messages (the log keeps them; the screen does not)."""

    def __init__(self):
        self._after_warning = False

    def harmless(self, line: str) -> bool:
        text = line.rstrip("\r\n")
        if self._after_warning:  # a warning's source line, as Python prints it under the warning
            self._after_warning = False
            if text.startswith((" ", "\t")) and text.strip():
                return True
        e = text_entry(text)
        self._after_warning = bool(e and e.category)
        return e is not None


# llama.cpp's log, through llama-cpp-python: its callback prints a piece when the "llama-cpp-python" logger's level
# allows it (Llama(verbose=False) sets ERROR), by ggml's old level numbers; ours prints exactly what it would, except
# that a listed line goes to the sink, named by ggml's level numbers now (llama-cpp-python 0.3's callback predates
# them: it takes a WARN for an ERROR, which is why verbose=False still prints llama.cpp's warnings).
_PRINTS_AT = {0: 50, 1: 20, 2: 30, 3: 40, 4: 10, 5: 10}  # llama-cpp-python's GGML_LOG_LEVEL_TO_LOGGING_LEVEL
_GGML_LEVEL = {0: "NONE", 1: "DEBUG", 2: "INFO", 3: "WARN", 4: "ERROR"}  # ggml.h's enum ggml_log_level; 5: CONT


class _LlamaLog:
    def __init__(self):
        self.pending, self.level, self.last = "", "INFO", "INFO"

    def __call__(self, level: int, text: bytes, user_data=None) -> None:
        if level != 5:  # 5 continues the last line's level
            self.last = _GGML_LEVEL.get(level, "INFO")
        if logging.getLogger("llama-cpp-python").level > _PRINTS_AT.get(level, 10):
            return  # the library would not print it either
        if not self.pending:
            self.level = self.last
        self.pending += text.decode("utf-8", "replace")
        if self.pending.endswith("\n"):
            self.emit(self.level, self.pending)
            self.pending = ""

    def emit(self, level: str, text: str) -> None:
        listed = any(e.native == level and e.pattern.fullmatch(text) for e in KNOWN)
        if not (listed and _divert(f"llama.cpp {level}", text)):
            print(text, end="", flush=True, file=sys.stderr)


llama_log = _LlamaLog()
_llama_callback = None  # the ctypes function llama.cpp holds: kept alive here


def _take_llama_log(module) -> None:
    global _llama_callback
    llama_cpp = sys.modules.get("llama_cpp")
    if llama_cpp is None or not hasattr(llama_cpp, "llama_log_set"):
        return
    _llama_callback = llama_cpp.llama_log_callback(llama_log)
    llama_cpp.llama_log_set(_llama_callback, ctypes.c_void_p(0))


class _AfterImport(importlib.abc.MetaPathFinder):
    """Runs `then(module)` right after `name` is imported (llama_cpp._logger sets its callback at import)."""

    def __init__(self, name: str, then):
        self.name, self.then = name, then

    def find_spec(self, fullname, path=None, target=None):
        if fullname != self.name:
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(fullname)
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        run, then = spec.loader.exec_module, self.then

        def exec_module(module):
            run(module)
            then(module)

        spec.loader.exec_module = exec_module
        return spec


def install() -> None:
    """Once per process, before the heavy imports: the logger filters and the llama.cpp hook (they pass everything
    while no command runs)."""
    global _installed
    if _installed:
        return
    _installed = True
    by_logger: dict[str, list[Harmless]] = {}
    for e in KNOWN:
        if e.logger:
            by_logger.setdefault(e.logger, []).append(e)
    for name, entries in by_logger.items():
        logging.getLogger(name).addFilter(_LoggerFilter(entries))
    # axolotl's logging.captureWarnings(True) prints warnings through this logger instead of showwarning
    logging.getLogger("py.warnings").addFilter(_CapturedWarnings())
    if "llama_cpp._logger" in sys.modules:
        _take_llama_log(sys.modules["llama_cpp._logger"])
    else:
        sys.meta_path.insert(0, _AfterImport("llama_cpp._logger", _take_llama_log))


class _CapturedWarnings(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if _active is None:
            return True
        text = record.getMessage().split("\n", 1)[0]  # "file:line: Category: message", then the source line
        return not (text_entry(text) and _divert("py.warnings", text))


def begin(name: str) -> None:
    """A command starts: its listed messages are held for its log (a command inside another gets its own)."""
    global _active
    install()
    sink = _Sink(name)
    if sink.shown is _showwarning:  # a command inside another: the hook before the outer one's
        sink.shown = _active.shown if _active is not None else warnings._showwarning_orig  # type: ignore[attr-defined]
    # per command, not per process: pytest's and catch_warnings' own hooks come and go around it
    warnings.showwarning = _showwarning
    sink.outer, _active = _active, sink


def log_to(path: Path) -> None:
    """The command's log from now on (a run's logs/train.log); what was held so far goes there first."""
    if _active is not None:
        _active.to(path)


def log_in(folder: Path) -> None:
    """log_to the command's own file in `folder` (a run's logs/: logs/merge.log, logs/chat.log)."""
    if _active is not None:
        _active.to(Path(folder) / f"{_active.name}.log")


def end(outputs: Path | None) -> str | None:
    """The command ends: what is still held goes to OUTPUTS/logs/<command>.log (`outputs` None: the settings
    could not be read, so it goes to stderr). Returns the one line that says
    so (None when the command had a run's log or diverted nothing)."""
    global _active
    sink = _active
    if sink is None:
        return None
    _active = sink.outer
    if warnings.showwarning is _showwarning and _active is None:
        warnings.showwarning = sink.shown
    if llama_log.pending:
        llama_log.emit(llama_log.level, llama_log.pending + "\n")
        llama_log.pending = ""
    if sink.path is not None or not sink.pending:
        return None
    from core.paths import repo_relative

    if outputs is not None:  # else no usable OUTPUTS: the messages go where they would have gone
        sink.to(outputs / "logs" / f"{sink.name}.log")
    if sink.path is None:
        sys.stderr.writelines(sink.pending)
        return None
    return f"note: {sink.count} known-harmless library message(s) went to {repo_relative(sink.path)}"
