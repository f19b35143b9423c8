"""Real multi-process training on CPU through the same launcher as on GPUs: 2 processes (CPU_PROCS=2),
DeepSpeed ZeRO-3 on gloo, a tiny Llama. Both ranks must end with identical LoRA weights that equal the saved
adapter, in one run directory with one manifest. Then a kill-and-resume of the same 2-process run: the
resumed run continues at the killed run's last complete checkpoint step, and its loss curve equals an
uninterrupted run's bit for bit: both start from the recipe's seed (launch/seed_plugin.py), the resumed ranks
restore their ZeRO optimizer shards, scheduler, RNG states and data order, gloo's reductions are deterministic for
a fixed world size, and every gather is synchronous on CPU (launch/distributed/deepspeed/zero3-gloo.json). A tolerance
here once hid that the two runs started from different adapters."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from core import manifest
from core.paths import REPO
from core.rundir import LATEST
from launch.checkpoints import is_complete, last_complete
from tests.conftest import OFFLINE

RECIPE = "smollm2-135m-cpu"
ARGS = (
    "--sequence_len=256 --micro_batch_size=1 --gradient_accumulation_steps=1 --test_datasets=null "
    "--eval_steps=null --eval_strategy=no --logging_steps=1 --num_epochs=1 --warmup_steps=0 --warmup_ratio=null "
    "--save_total_limit=20"
)


def command(tiny: str, steps: int, save: int) -> list[str]:
    return [
        sys.executable,
        "-m",
        "launch.train",
        RECIPE,
        "--force",
        f"--args=--base_model={tiny} --max_steps={steps} --save_steps={save} {ARGS}",
    ]


def env_for(outputs) -> dict:
    return {**os.environ, **OFFLINE, "PYTHONPATH": str(REPO), "OUTPUTS": str(outputs), "CPU_PROCS": "2"}


def loss_curve(run) -> dict[int, float]:
    state = json.loads((last_complete(run / "output") / "trainer_state.json").read_text())
    return {h["step"]: h["loss"] for h in state["log_history"] if "loss" in h}


def only_run(outputs):
    runs_dir = outputs / "runs" / RECIPE
    found = [p for p in runs_dir.iterdir() if p.is_dir()]
    assert len(found) == 1, found
    return found[0]


@pytest.fixture(scope="module")
def tiny(tiny_model):
    return str(tiny_model("llama"))


@pytest.fixture(scope="module")
def reference(tiny, tmp_path_factory):
    outputs = tmp_path_factory.mktemp("zero3-ref")
    proc = subprocess.run(
        command(tiny, 12, 4), cwd=REPO, env=env_for(outputs), capture_output=True, text=True, timeout=900
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return outputs, proc.stdout


@pytest.mark.slow
def test_two_process_zero3_trains_identical_ranks_into_one_run(reference):
    outputs, stdout = reference
    assert "--launcher torchrun -- --standalone --nproc_per_node=2" in stdout and "strategy: zero3" in stdout
    run = only_run(outputs)
    assert not (outputs / "workers").exists()
    m = manifest.read(run)
    assert m.status == "completed" and m.train.topology.world_size == 2 and m.train.launch.strategy == "zero3"
    assert m.ranks.ranks == [0, 1] and m.ranks.identical and m.ranks.saved_adapter_matches
    records = [json.loads((run / "output" / "ranks" / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert records[0]["sha256"] == records[1]["sha256"] and records[0]["world_size"] == 2
    assert records[0]["global_step"] == 12 and records[0]["tensors"] > 0
    ckpt = run / "output" / "checkpoint-12"
    assert is_complete(ckpt) and len(list((ckpt / "global_step12").glob("*_optim_states.pt"))) == 2
    # the Trainer saw two ranks (one RNG state each; only rank 0 wrote the shared files)
    assert {p.name for p in ckpt.glob("rng_state*.pth")} == {"rng_state_0.pth", "rng_state_1.pth"}
    assert (run.parent / LATEST).read_text().strip() == run.name


@pytest.mark.slow
def test_killed_zero3_run_resumes_with_the_same_processes(tiny, reference, tmp_path):
    ref_outputs, _ = reference
    ref_curve = loss_curve(only_run(ref_outputs))
    outputs = tmp_path / "out"
    env = env_for(outputs)
    proc = subprocess.Popen(
        command(tiny, 12, 4),
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.time() + 600
    found = []
    while not found and time.time() < deadline and proc.poll() is None:
        found = [c for c in (outputs / "runs" / RECIPE).glob("*/output/checkpoint-4") if is_complete(c)]
        time.sleep(0.2)
    assert found, "no complete checkpoint-4 appeared"
    os.killpg(proc.pid, signal.SIGKILL)  # the pod is gone: launcher, torchrun and both ranks
    proc.wait()
    run = only_run(outputs)
    killed_at = last_complete(run / "output")
    assert manifest.read(run).status == "running" and killed_at.name != "checkpoint-12"

    wrong = subprocess.run(
        command(tiny, 12, 4), cwd=REPO, env={**env, "CPU_PROCS": "1"}, capture_output=True, text=True, timeout=300
    )
    assert wrong.returncode == 2 and "trained with 2 process(es); resuming needs the same number" in wrong.stderr

    resumed = subprocess.run(command(tiny, 12, 4), cwd=REPO, env=env, capture_output=True, text=True, timeout=900)
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]
    assert f"resuming {run} from {killed_at.name}" in resumed.stdout
    m = manifest.read(run)
    step = int(killed_at.name.split("-")[1])
    assert m.status == "completed" and m.resumes[-1].step == step and m.ranks.identical
    curve = loss_curve(run)
    assert sorted(curve) == list(range(1, 13)) == sorted(ref_curve)
    assert curve == ref_curve, (curve, ref_curve)
