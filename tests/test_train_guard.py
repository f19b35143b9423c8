"""`make train` fails as one clear error, never as a traceback on the screen: a GPU profile on a machine where
torch sees no CUDA device is refused before any run directory exists (saying how to train on the CPU instead),
and a trainer that fails is summarised by its exception, with its traceback kept in the run's log."""

from __future__ import annotations

import re
import shutil

from core import manifest
from tests.conftest import SMOKE, run_cli


def test_a_gpu_run_without_cuda_is_refused_before_any_run_directory(outputs):
    # tests/conftest.py hides CUDA (CUDA_VISIBLE_DEVICES=""): this is a CPU box told DEVICE=gpu
    proc = run_cli("launch.train", "qwen25-05b-instruct-brie", env={"DEVICE": "gpu", "OUTPUTS": str(outputs)})
    said = proc.stdout + proc.stderr
    assert proc.returncode == 2, said[-3000:]
    assert "DEVICE=gpu, but torch sees no CUDA device on this machine" in proc.stderr, said[-3000:]
    assert "DEVICE=cpu make train RECIPE=qwen25-05b-instruct-brie" in proc.stderr
    assert "Traceback" not in said and "topology:" not in said
    assert not (outputs / "runs").exists()


def test_a_failing_trainer_is_summarised_and_its_traceback_kept_in_the_log(outputs, tiny_model, tmp_path):
    broken = tmp_path / "broken-model"
    shutil.copytree(tiny_model("llama"), broken)
    [weights] = broken.glob("*.safetensors")
    weights.write_bytes(b"not a safetensors file")  # the model loads in axolotl's process, which then fails
    proc = run_cli(
        "launch.train", "smollm2-135m-cpu", f"--args=--base_model={broken} {SMOKE}", env={"OUTPUTS": str(outputs)}
    )
    said = proc.stdout + proc.stderr
    assert proc.returncode == 2, said[-3000:]
    assert "Traceback" not in said and 'File "' not in said, said[-3000:]
    error = proc.stderr.split("error:", 1)[1]
    assert "axolotl exited with status" in error
    summary = error.split("\n")[1].strip()  # the line after "axolotl exited with status N:"
    [run] = (outputs / "runs" / "smollm2-135m-cpu").iterdir()
    log = (run / "logs" / "train.log").read_text()
    assert "Traceback (most recent call last)" in log
    # the exception that ended the trainer, as its traceback in the log ends
    [*_, raised] = [line for line in log.splitlines() if re.match(r"[\w.]+(Error|Exception): ", line)]
    assert summary == raised.strip(), error
    assert str(run / "logs" / "train.log") in error and manifest.read(run).status == "failed"
