"""`make judge JUDGES=local` without JUDGE_URL: llama.cpp's server is started for the judge GGUF (JUDGE_GGUF,
else the embedded SmolLM2 GGUF), judges, and is stopped after: nothing listens on its port once the command
has ended. A JUDGE_GGUF that names no file is one clear error before anything starts."""

from __future__ import annotations

import json
import re
import urllib.request

import pytest

from tests.conftest import run_cli
from tests.shared_runs import copy_run


@pytest.mark.slow
def test_local_judge_without_url_is_served_and_stopped(default_run, tmp_path):
    run = copy_run(default_run[0], tmp_path / "outputs")  # judging writes into the run
    env = {"OUTPUTS": str(run.parent.parent.parent), "JUDGE_URL": "", "RUN": str(run)}
    proc = run_cli("eval.judge", "--judges", "local", "--limit", "1", "--max-new-tokens", "8", env=env, timeout=900)
    said = proc.stdout + proc.stderr
    assert proc.returncode == 0, said[-3000:]
    assert "no JUDGE_URL; starting llama.cpp's server for SmolLM2-135M-Instruct" in said
    url = re.search(r"judge server: (http://127\.0\.0\.1:\d+/v1)", said).group(1)
    assert "judge server stopped" in said
    rows = [json.loads(line) for line in (run / "judge" / "local.jsonl").read_text().splitlines()]
    assert len(rows) == 2 and all(r["reply"] and r["error"] is None for r in rows)  # it answered, in both orders
    assert (run / "judge" / "llama-server.log").is_file()
    with pytest.raises(OSError):
        urllib.request.urlopen(f"{url}/models", timeout=5)  # stopped


@pytest.mark.slow
def test_a_missing_judge_gguf_is_one_error(default_run, tmp_path):
    run, _ = default_run
    env = {
        "OUTPUTS": str(run.parent.parent.parent),
        "JUDGE_URL": "",
        "RUN": str(run),
        "JUDGE_GGUF": str(tmp_path / "no.gguf"),
    }
    proc = run_cli("eval.judge", "--judges", "local", "--limit", "1", "--max-new-tokens", "8", env=env, timeout=900)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    assert "JUDGE_GGUF names no file" in proc.stderr and "no.gguf" in proc.stderr
