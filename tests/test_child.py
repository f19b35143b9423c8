"""Child processes (core/child.py): their progress reaches the screen, their tracebacks only the log, and a
failure is summarised by the exception that ended it, the rank's own and not the launcher's wrapper around it.
Real children: a Python process, torchrun with a failing rank, llama.cpp's converter."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest

from core import child
from core.errors import UserError
from core.paths import REPO

CHAINED = """
print("step 1: loss 2.0", flush=True)
try:
    {}["text"]
except KeyError as exc:
    raise ValueError("the dataset has no column 'text'") from exc
"""
RANK_FAILS = """
import os, sys, time
print(f"rank {os.environ['RANK']} starts", flush=True)
if os.environ["RANK"] == "1":
    raise RuntimeError("rank 1 ran out of data")
time.sleep(120)
"""


def env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO)}


def test_a_failing_child_is_one_line_on_the_screen_and_its_traceback_in_the_log(tmp_path):
    shown: list[str] = []
    log = tmp_path / "logs" / "step.log"
    ended = child.run([sys.executable, "-c", CHAINED], log, env(), show=shown.append)
    screen = "".join(shown)
    assert ended.returncode == 1
    assert "step 1: loss 2.0" in screen  # progress still shows
    assert "Traceback" not in screen and 'File "' not in screen and "KeyError" in screen
    assert ended.errors == ["ValueError: the dataset has no column 'text'"]  # the chain's last link ended it
    text = log.read_text()
    assert "Traceback (most recent call last)" in text and 'File "<string>"' in text and "KeyError: 'text'" in text
    err = ended.error("the step")
    assert "the step exited with status 1:\n  ValueError: the dataset has no column 'text'" in str(err)
    assert str(log) in str(err)


def test_torchrun_failure_names_the_ranks_exception_not_the_launchers(tmp_path):
    script = tmp_path / "worker.py"
    script.write_text(RANK_FAILS)
    shown: list[str] = []
    argv = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", str(script)]
    ended = child.run(argv, tmp_path / "train.log", env(), show=shown.append)
    assert ended.returncode != 0
    assert ended.errors == ["RuntimeError: rank 1 ran out of data"], ended.tail[-30:]
    screen = "".join(shown)
    assert "Traceback" not in screen and "rank 0 starts" in screen
    assert "ChildFailedError" in (tmp_path / "train.log").read_text()  # the launcher's own report: in the log


@pytest.mark.parametrize(
    "lines, summary",
    [
        (  # rich's boxed traceback, as a click/typer CLI prints it
            [
                "loading model",
                "╭───────────────────── Traceback (most recent call last) ─────────────────────╮",
                "│ /x/cli.py:10 in main                                                        │",
                "╰─────────────────────────────────────────────────────────────────────────────╯",
                "OSError: Qwen/Qwen2.5-0.5B is not a local folder and is not a valid model identifier",
            ],
            ["OSError: Qwen/Qwen2.5-0.5B is not a local folder and is not a valid model identifier"],
        ),
        (  # an exception whose message goes on, indented (pydantic)
            [
                "[rank0]: Traceback (most recent call last):",
                '[rank0]:   File "/x/config.py", line 3, in load',
                "[rank0]: pydantic_core._pydantic_core.ValidationError: 1 validation error for AxolotlInputConfig",
                "[rank0]:   learning_rate",
                "[rank0]:     Input should be a valid number",
            ],
            [
                "pydantic_core._pydantic_core.ValidationError: 1 validation error for AxolotlInputConfig",
                "learning_rate",
                "Input should be a valid number",
            ],
        ),
        (  # no traceback: the last lines that say what failed
            ["INFO:hf-to-gguf:Loading model", "ERROR:hf-to-gguf:Model Foo is not supported", "bye"],
            ["ERROR:hf-to-gguf:Model Foo is not supported"],
        ),
        (["all went quiet", "then it stopped"], ["all went quiet", "then it stopped"]),
    ],
)
def test_the_summary_is_the_meaningful_line(lines, summary):
    d = child.digest_text(lines)
    assert d.summary() == summary
    assert d.feed("next line") == "next line"  # after a traceback, lines show again


def test_a_converter_failure_is_its_error_line_and_its_log(tmp_path):
    from tools.export import gguf

    if not gguf.CONVERTER.is_file():
        pytest.fail(f"llama.cpp's converter is missing ({gguf.CONVERTER}): make setup installs it")
    merged = tmp_path / "merged"
    merged.mkdir()
    config = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 32, "vocab_size": 100}
    (merged / "config.json").write_text(json.dumps({**config, "num_hidden_layers": 1, "num_attention_heads": 2}))
    (tmp_path / "run").mkdir()
    with pytest.raises(UserError) as err:  # no tokenizer files: the converter raises, several lines long
        gguf.convert(merged, tmp_path / "run" / "gguf" / "x-f16.gguf", "f16")
    text = str(err.value)
    log = tmp_path / "run" / "logs" / "gguf.log"
    written = log.read_text()
    assert "Traceback (most recent call last)" in written and str(log) in text
    [*_, raised] = [line for line in written.splitlines() if re.match(r"[\w.]+(Error|Exception): ", line)]
    assert f"convert_hf_to_gguf.py exited with status 1:\n  {raised.strip()}" in text  # what ended it, first
    assert "Traceback" not in text and 'File "' not in text


# a command (core/cli.main) whose child starts a grandchild, as axolotl's CLI starts torchrun and torchrun the ranks
TREE = """
import sys
from pathlib import Path
from core import child, cli

code = "import os, subprocess, sys, time; p = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)']); print(os.getpid(), p.pid, flush=True); time.sleep(600)"

def body(s):
    child.run([sys.executable, "-c", code], Path(sys.argv[1]), show=lambda s: (sys.stdout.write(s), sys.stdout.flush()))

sys.exit(cli.main(body))
"""


def test_a_sigterm_to_the_command_alone_ends_its_child_and_the_childs_children(tmp_path):
    import signal
    import time

    import psutil

    proc = subprocess.Popen(
        [sys.executable, "-c", TREE, str(tmp_path / "child.log")],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    pids = [int(p) for p in proc.stdout.readline().split()]  # the child's and its child's
    assert len(pids) == 2 and all(psutil.pid_exists(p) for p in pids)
    proc.send_signal(signal.SIGTERM)  # to the command only, as a supervisor or a pod's stop sends it
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 143 and "terminated" in err and "Traceback" not in err, err
    deadline = time.monotonic() + 30  # reaped by now: wait_procs returned; a zombie's pid may linger briefly
    while any(psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE for p in pids):
        assert time.monotonic() < deadline, f"still running: {pids}"
        time.sleep(0.2)
