"""Every command the Makefile runs (`python -m <module>`) starts without torch, transformers, axolotl, datasets,
peft, lm-eval or llama.cpp: `--help` in a fresh process imports none of them, so no module of a CLI imports one
at its top (they belong inside the function that needs them, after the arguments, settings and input files are
checked). The bad-input corpus (tests/test_bad_input_corpus.py) proves the same of each CLI's refusals."""

from __future__ import annotations

import json
import re

import pytest

from core.paths import REPO
from tests.cli_inprocess import HEAVY, run_cold

NOT_OURS = {"pytest", "ruff", "pip"}


def makefile_modules() -> list[str]:
    found = re.findall(r"-m ([a-z_][a-z0-9_.]*)", (REPO / "Makefile").read_text())
    return sorted(set(found) - NOT_OURS)


def test_the_makefile_names_the_clis():
    modules = makefile_modules()
    assert {"launch.preflight", "data.tools.data_check", "tools.serve.chat", "eval.lmeval"} <= set(modules)
    assert all(
        (REPO / m.replace(".", "/")).with_suffix(".py").is_file() or (REPO / m.replace(".", "/")).is_dir()
        for m in modules
    ), modules


@pytest.mark.parametrize("module", makefile_modules())
def test_help_imports_no_heavy_package(module, tmp_path):
    imports = tmp_path / "imports.json"
    proc = run_cold(module, ["--help"], {"OUTPUTS": str(tmp_path / "outputs")}, imports, timeout=120)
    assert proc.returncode == 0 and "usage:" in proc.stdout, proc.stdout[-1500:] + proc.stderr[-1500:]
    imported = json.loads(imports.read_text())
    assert imported == [], f"python -m {module} --help imported {imported} (of {', '.join(HEAVY)})"
