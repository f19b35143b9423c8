"""Run a CLI's `main(argv)` inside the test process, as `python -m module argv` would run it in its own: the same
environment (applied with monkeypatch, undone after), the repo as working directory, output captured at the file
descriptors (capfd: what a library prints through a stream it opened at import is caught too), argparse's
SystemExit turned into the exit status, and any other exception kept as the traceback a fresh process would have
printed. One real subprocess per CLI stays in the corpus (tests/test_bad_input_corpus.py): it is the one that
also proves the refusal needs no heavy import."""

from __future__ import annotations

import importlib
import importlib.util
import os
import subprocess
import traceback
from dataclasses import dataclass

from core.paths import REPO
from tests.conftest import OFFLINE


@dataclass
class Ran:
    returncode: int
    stdout: str
    stderr: str


def entry(module: str):
    """The module whose `main` `python -m module` runs (a package runs its __main__)."""
    spec = (
        importlib.util.find_spec(f"{module}.__main__")
        if importlib.util.find_spec(module).submodule_search_locations
        else None
    )
    return importlib.import_module(f"{module}.__main__" if spec else module)


def run_main(module: str, argv: list[str], env: dict[str, str], monkeypatch, capfd) -> Ran:
    full = {**OFFLINE, "PYTHONPATH": str(REPO), **env}
    for name, value in full.items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(REPO)
    capfd.readouterr()  # what came before is not this command's
    code: int
    try:
        code = entry(module).main(argv) or 0
    except SystemExit as exc:  # argparse, or a sys.exit() inside
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        if not isinstance(exc.code, int | None):
            print(exc.code, file=__import__("sys").stderr)
    except BaseException:  # noqa: BLE001 - a fresh process would print this traceback and exit 1
        traceback.print_exc()
        code = 1
    out, err = capfd.readouterr()
    return Ran(code, out, err)


HEAVY = ("torch", "transformers", "axolotl", "datasets", "peft", "lm_eval", "llama_cpp")
COLD = """import atexit, json, os, runpy, sys
def _dump():
    with open(os.environ["AFFINAGE_TEST_IMPORTS"], "w") as fh:
        json.dump(sorted(m for m in {heavy!r} if m in sys.modules), fh)
atexit.register(_dump)
sys.argv = sys.argv[1:]
runpy.run_module(sys.argv[0], run_name="__main__", alter_sys=True)
"""


def run_cold(module: str, argv: list[str], env: dict[str, str], imports_file, timeout: int = 300):
    """`python -m module argv` in a fresh process; also writes which heavy packages it imported to `imports_file`."""
    import sys

    full = {**os.environ, **OFFLINE, "PYTHONPATH": str(REPO), **env, "AFFINAGE_TEST_IMPORTS": str(imports_file)}
    code = COLD.format(heavy=HEAVY)
    return subprocess.run(
        [sys.executable, "-c", code, module, *argv], cwd=REPO, env=full, capture_output=True, text=True, timeout=timeout
    )
