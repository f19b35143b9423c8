"""A lock that says "a process is working here, and it is alive": a small JSON file naming the host, the pid and
when it started, whose modification time a background thread refreshes every few seconds (the heartbeat).

Another process may take the lock only when it is stale: no heartbeat for STALE_S (a killed pod on a shared
volume stops beating), or its holder ran on this same machine and that pid is gone (a killed process: no need to
wait). A pid alone is not trusted across machines, nor across pid namespaces (two containers with one hostname),
which is why the machine is the hostname and the pid namespace. Taking a fresh lock needs force."""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

from pydantic import BaseModel, ValidationError

from core import atomic
from core.errors import UserError, Where

BEAT_S = 5.0
STALE_S = 90.0  # well above BEAT_S and a network volume's attribute caching


def this_machine() -> str:
    """The hostname and the pid namespace: where a pid means the same process."""
    try:
        ns = os.readlink("/proc/self/ns/pid")
    except OSError:
        ns = "?"
    return f"{socket.gethostname()} {ns}"


class Holder(BaseModel):
    host: str
    machine: str
    pid: int
    started: str
    token: str

    def describe(self) -> str:
        return f"host {self.host}, pid {self.pid}, since {self.started}"


def mine() -> Holder:
    return Holder(
        host=socket.gethostname(),
        machine=this_machine(),
        pid=os.getpid(),
        started=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        token=uuid.uuid4().hex,
    )


def read(path: Path) -> Holder | None:
    """The holder named in the lock file; None when there is no lock (an unreadable one: an unknown holder)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except OSError:
        text = ""
    try:
        return Holder.model_validate_json(text)
    except ValidationError:
        return Holder(host="unknown", machine="unknown", pid=0, started="unknown", token="")


def pid_alive(pid: int) -> bool:
    """Whether `pid` runs on this machine (a zombie, killed but not yet reaped, does not)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def age_s(path: Path) -> float | None:
    """Seconds since the last heartbeat (None: no lock file)."""
    try:
        return max(0.0, time.time() - Path(path).stat().st_mtime)
    except FileNotFoundError:
        return None


def why_stale(path: Path, holder: Holder, stale_s: float = STALE_S) -> str | None:
    """Why the lock at `path` no longer holds (None: its holder is alive)."""
    age = age_s(path)
    if age is None:
        return "the lock is gone"
    if age > stale_s:
        return f"no heartbeat for {age:.0f} s (more than {stale_s:.0f} s)"
    if holder.machine == this_machine() and (holder.pid == os.getpid() or not pid_alive(holder.pid)):
        return f"pid {holder.pid} no longer runs on this machine"
    return None


class Heartbeat:
    """A held lock: `start()` beats in a daemon thread; `release()` stops it and removes the lock (if still ours:
    a holder that was forced out leaves the new holder's lock alone)."""

    def __init__(self, path: Path, holder: Holder, beat_s: float = BEAT_S):
        self.path, self.holder, self.beat_s = Path(path), holder, beat_s
        self.lost = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name=f"heartbeat {path}", daemon=True)

    def ours(self) -> bool:
        held = read(self.path)
        return held is not None and held.token == self.holder.token

    def _beat(self) -> None:
        while not self._stop.wait(self.beat_s):
            try:
                if not self.ours():
                    self.lost = True
                    print(f"note: {self.path} was taken over by another process; this one no longer holds it")
                    return
                os.utime(self.path)
            except OSError:
                continue  # a full disk or a network blip: try again at the next beat

    def start(self) -> Heartbeat:
        self._thread.start()
        return self

    def release(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()
        try:
            if self.ours():
                self.path.unlink()
        except OSError:
            pass  # left behind: its pid is gone, so it reads as stale

    def __enter__(self) -> Heartbeat:
        return self

    def __exit__(self, *exc) -> None:
        self.release()


def _refusal(path: Path, holder: Holder, what: str, hint: str) -> UserError:
    age = age_s(path) or 0.0
    return UserError(
        f"{what} is in use by a live process ({holder.describe()}; last heartbeat {age:.0f} s ago)", Where(path), hint
    )


def refuse_if_live(path: Path, what: str, hint: str, stale_s: float = STALE_S) -> None:
    """Raise one UserError when a live holder has `path`; nothing to do otherwise."""
    holder = read(path)
    if holder is not None and why_stale(path, holder, stale_s) is None:
        raise _refusal(path, holder, what, hint)


def acquire(
    path: Path, what: str, hint: str, force: bool = False, stale_s: float = STALE_S, beat_s: float = BEAT_S
) -> Heartbeat:
    """Take the lock at `path` and start its heartbeat; a live holder is refused (UserError naming `what`, the
    holder and `hint`) unless `force`. A stale lock is taken over, and said."""
    path = Path(path)
    me = mine()
    with atomic.locked(path):  # two processes deciding at once take turns
        holder = read(path)
        if holder is not None:
            stale = why_stale(path, holder, stale_s)
            if stale is None and not force:
                raise _refusal(path, holder, what, hint)
            print(f"note: taking over {what} from {holder.describe()}: {stale or 'forced'}", flush=True)
        atomic.write_text(path, me.model_dump_json() + "\n")
    return Heartbeat(path, me, beat_s).start()
