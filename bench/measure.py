"""Timing helpers: run a command and record wall time and the peak RSS of its whole process tree."""

from __future__ import annotations

import statistics
import subprocess
import threading
import time
from collections.abc import Callable
from typing import Any


def spread(values: list[float]) -> dict[str, Any]:
    return {
        "min": min(values),
        "median": statistics.median(values),
        "max": max(values),
        "n": len(values),
        "values": values,
    }


def repeat(fn: Callable[[], float], times: int) -> dict[str, Any]:
    return spread([fn() for _ in range(times)])


def run_tracked(cmd: list[str], env: dict | None = None, cwd=None, timeout: int = 3600) -> dict[str, Any]:
    """Run `cmd`; return stdout (stderr merged), each line with the second it arrived at (`lines`: give the child
    PYTHONUNBUFFERED=1 for live times), returncode, wall seconds and peak RSS (GB) of the process and its
    children."""
    import psutil

    start = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    peak = [0]
    lines: list[tuple[float, str]] = []
    done = threading.Event()

    def poll() -> None:
        try:
            root = psutil.Process(proc.pid)
            while not done.is_set():
                try:
                    rss = sum(p.memory_info().rss for p in [root, *root.children(recursive=True)])
                    peak[0] = max(peak[0], rss)
                except psutil.Error:
                    pass
                time.sleep(0.2)
        except psutil.Error:
            return

    def read() -> None:
        for line in proc.stdout:
            lines.append((time.perf_counter() - start, line.rstrip("\n")))

    watcher, reader = threading.Thread(target=poll, daemon=True), threading.Thread(target=read, daemon=True)
    watcher.start()
    reader.start()
    try:
        proc.wait(timeout=timeout)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        seconds = time.perf_counter() - start
        reader.join()
        done.set()
        watcher.join()
    return {
        "stdout": "\n".join(text for _, text in lines),
        "lines": lines,
        "returncode": proc.returncode,
        "seconds": seconds,
        "peak_rss_gb": peak[0] / 1e9,
    }
