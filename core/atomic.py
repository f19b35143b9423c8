"""Write files and folders so that a reader never sees half of one."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


def write_text(path: Path, text: str) -> None:
    """Write to a temp file beside `path`, fsync, then rename over it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json(path: Path, data: Any) -> None:
    write_text(path, json.dumps(data, indent=2, sort_keys=False, default=str) + "\n")


def _aside(final: Path) -> Path:
    return final.with_name(f".{final.name}.old")


def recover(final: Path) -> None:
    """Undo what a crash inside `folder`'s swap left: the old folder set aside with no final folder (put it
    back), or set aside beside a final one already in place (delete it)."""
    final, aside = Path(final), _aside(Path(final))
    if not aside.exists():
        return
    if final.exists():
        shutil.rmtree(aside, ignore_errors=True)
    else:
        os.replace(aside, final)


@contextmanager
def folder(final: Path) -> Iterator[Path]:
    """Yield a temp folder beside `final`; on success it replaces `final` by renames only: the old folder is
    renamed aside, the new one renamed in, and only then is the old one deleted, so a crash at any point leaves
    a complete folder (old or new; `recover`, run here on the next start, puts an old one set aside back)."""
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    recover(final)
    for stale in final.parent.glob(f".{final.name}.*.partial"):  # left by a killed earlier attempt
        shutil.rmtree(stale, ignore_errors=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".partial", dir=final.parent))
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    aside = _aside(final)
    if final.exists():
        os.replace(final, aside)
    os.replace(tmp, final)
    shutil.rmtree(aside, ignore_errors=True)


@contextmanager
def locked(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on `path` (a `.lock` file beside it) for a read-modify-write: two steps that
    update the same file at once (make eval and make judge on one run) take turns instead of losing one update."""
    import fcntl

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(f".{path.name}.lock"), "a") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


class Held(Exception):
    """The lock file is held by another live process; `holder` is what that process wrote in it."""

    def __init__(self, path: Path, holder: str):
        super().__init__(f"{path} is held by {holder}")
        self.path, self.holder = path, holder


@contextmanager
def held(lock_file: Path) -> Iterator[None]:
    """Hold `lock_file` for as long as a command runs, without waiting: raise Held (naming the holder: pid, host,
    since when) when another process has it. The kernel drops a lock when its process dies, so a lock file left by
    a killed process is simply taken over."""
    import fcntl
    import socket
    from datetime import UTC, datetime

    lock_file = Path(lock_file)
    lock_file.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_file, "a+", encoding="utf-8") as fh:
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.seek(0)
            raise Held(lock_file, fh.read().strip() or "another process") from None
        try:
            fh.seek(0)
            fh.truncate()
            since = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            fh.write(f"pid {os.getpid()} on {socket.gethostname()} since {since}\n")
            fh.flush()
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)
