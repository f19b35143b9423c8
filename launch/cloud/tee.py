"""A job's log on its machine: every line printed and appended to a file, and child commands' output with it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import TextIO

from core.paths import REPO


class Tee:
    def __init__(self, log: Path):
        log.parent.mkdir(parents=True, exist_ok=True)
        self.fh: TextIO = log.open("a", encoding="utf-8", buffering=1)

    def say(self, line: str) -> None:
        for out in (sys.stdout, self.fh):
            out.write(line if line.endswith("\n") else line + "\n")
        sys.stdout.flush()

    def run(self, argv: list[str], env: dict[str, str]) -> int:
        self.say("$ " + " ".join(argv))
        proc = subprocess.Popen(
            argv, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace"
        )
        assert proc.stdout is not None
        for line in proc.stdout:
            self.say(line)
        return proc.wait()
