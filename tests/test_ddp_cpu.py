"""DDP, the strategy `auto` picks for LoRA models that fit on each GPU, run for real on CPU: 2 processes (CPU_PROCS=2,
STRATEGY=ddp) through the same launcher, stock axolotl, gloo. What makes it run: ACCELERATE_USE_CPU=true (so
accelerate joins a gloo group) and the rank plugin's load_datasets hook, which drops the CUDA device map that
axolotl's normalize_config gives every multi-process run (launch/rank_plugin.py). Both ranks must see two ranks,
end with identical LoRA weights equal to the saved adapter, in one run directory; and the plugin hook itself is
checked on both kinds of config."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from core import manifest
from core.paths import REPO
from tests.conftest import OFFLINE
from tests.test_distributed_cpu import ARGS, RECIPE, only_run


def test_the_plugin_clears_only_a_cpu_ranks_device_map(monkeypatch):
    from axolotl.utils.dict import DictDefault

    from launch.rank_plugin import cpu_device_map

    ddp = DictDefault({"world_size": 2, "device_map": {"": 1}})
    assert cpu_device_map(ddp) and ddp.device_map is None
    for kept in (
        {"world_size": 2, "device_map": {"": 1}, "deepspeed": {"zero_optimization": {"stage": 3}}},
        {"world_size": 1, "device_map": "auto"},
        {"world_size": 2, "device_map": {"": 1}, "fsdp_config": {"fsdp_version": 2}},
    ):
        cfg = DictDefault(kept)
        assert not cpu_device_map(cfg) and cfg.device_map == kept["device_map"]


PROBE = """
import os
import torch
from axolotl.utils import trainer
from axolotl.utils.dict import DictDefault
from core import settings
from launch.rank_plugin import skip_cuda_peer_probe

try:
    trainer.prepare_optim_env(DictDefault({}))
    print("probe: fine")
except RuntimeError as e:  # the CUDA build of torch without a driver
    print("probe: " + str(e).split(".")[0])
print("patched:", skip_cuda_peer_probe(settings.load().world_size))
trainer.prepare_optim_env(DictDefault({}))
print("after: fine", os.environ.get("NCCL_P2P_DISABLE"))
"""


def test_axolotls_p2p_probe_initialises_no_cuda_on_cpu_ranks():
    """axolotl asks torch.cuda.can_device_access_peer in every multi-process run; on a CUDA build of torch without
    a GPU that raised in every rank (CI on axolotl 0.21). On CPU ranks the plugin answers it."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "WORLD_SIZE": "2", "LOCAL_RANK": "0", "RANK": "0"}
    env.pop("NCCL_P2P_DISABLE", None)
    proc = subprocess.run([sys.executable, "-c", PROBE], cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU here: the probe is real and the plugin leaves it alone")
    before = "probe: Found no NVIDIA driver on your system" if torch.version.cuda else "probe: fine"
    assert before in proc.stdout and "patched: True" in proc.stdout and "after: fine None" in proc.stdout


@pytest.mark.slow
def test_two_process_ddp_on_cpu_trains_identical_ranks(tiny_model, tmp_path):
    outputs = tmp_path / "out"
    env = {**os.environ, **OFFLINE, "PYTHONPATH": str(REPO), "OUTPUTS": str(outputs), "CPU_PROCS": "2"}
    env["STRATEGY"] = "ddp"
    tiny = tiny_model("llama")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "launch.train",
            RECIPE,
            "--force",
            f"--args=--base_model={tiny} --max_steps=4 --save_steps=4 {ARGS}",
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=1200,
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-3000:]
    assert "strategy: ddp" in proc.stdout and "ACCELERATE_USE_CPU=true" in proc.stdout
    run = only_run(outputs)
    m = manifest.read(run)
    assert m.status == "completed" and m.train.launch.strategy == "ddp" and m.train.topology.world_size == 2
    assert m.ranks.ranks == [0, 1] and m.ranks.identical and m.ranks.saved_adapter_matches
    records = [json.loads((run / "output" / "ranks" / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert records[0]["sha256"] == records[1]["sha256"] and {r["world_size"] for r in records} == {2}
    ckpt = run / "output" / "checkpoint-4"
    assert {p.name for p in ckpt.glob("rng_state*.pth")} == {"rng_state_0.pth", "rng_state_1.pth"}
