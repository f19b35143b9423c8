"""Why the 2-process ZeRO-3 CPU run once "trained apart": it did not. DeepSpeed's gather of several ZeRO-3
parameters at once (GatheredParameters: the saved 16-bit state dict, the rank fingerprint) starts one async
all-gather per tensor and waits only for the last, which is enough on NCCL's in-order CUDA stream but not on gloo,
whose worker threads finish out of order: under load an earlier tensor was read while still unfilled (garbage
norms at one step, identical weights the next; ~5 % of gathers with two CPU burners beside). CPU ranks therefore
run launch/distributed/deepspeed/zero3-gloo.json (stage3_allgather_sequential: each gather synchronous), and the rank
fingerprint gathers one tensor at a time. This test runs the gather 150 times on 2 gloo ranks with a CPU burner
beside them and requires every gathered value to equal the true weights."""

from __future__ import annotations

import re
import subprocess
import sys
import time

import pytest

from core import settings
from core.paths import REPO
from launch.distributed.strategy import DEEPSPEED_DIR, GLOO_ZERO3, config_keys

BURN = "import time\nend = time.time() + 240\nwhile time.time() < end:\n    sum(i * i for i in range(10000))\n"


def test_cpu_ranks_get_the_gloo_config_and_gpus_the_standard_one():
    assert config_keys("zero3", {}, "cpu", cache=settings.load().cache)["deepspeed"] == str(DEEPSPEED_DIR / GLOO_ZERO3)
    assert config_keys("zero3", {}, "gpu", cache=settings.load().cache)["deepspeed"] == str(
        DEEPSPEED_DIR / "zero3.json"
    )


@pytest.mark.slow
def test_sequential_gathers_on_gloo_read_only_true_values_under_load(tmp_path):
    burner = subprocess.Popen([sys.executable, "-c", BURN])
    try:
        time.sleep(0.5)
        proc = subprocess.run(
            [
                str(REPO / ".venv" / "bin" / "torchrun")
                if (REPO / ".venv" / "bin" / "torchrun").exists()
                else "torchrun",
                "--standalone",
                "--nproc_per_node=2",
                str(REPO / "tests" / "zero3_gather.py"),
                str(DEEPSPEED_DIR / GLOO_ZERO3),
                "150",
            ],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=600,
        )
    finally:
        burner.kill()
    results = re.findall(r"GATHERS rank=(\d) wrong=(\d+) of=(\d+)", proc.stdout)
    assert proc.returncode == 0 and len(results) == 2, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert all(wrong == "0" and of == "150" for _, wrong, of in results), results
