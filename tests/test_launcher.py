"""The launcher's command lines for 1/2/8 GPUs, 2 nodes and a RunPod Instant Cluster env: checked against
torchrun's own argument parser and against the torchrun command axolotl's CLI builds from our argv."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from core import settings
from core.errors import UserError
from launch.distributed import strategy as dist
from launch.distributed import topology

CFG = Path("/runs/x/config.yaml")
RUNPOD_ENV = {
    "PRIMARY_ADDR": "10.65.0.2",
    "MASTER_ADDR": "10.65.0.2",
    "PRIMARY_PORT": "5000",
    "MASTER_PORT": "5000",
    "NODE_ADDR": "10.65.0.3",
    "NODE_RANK": "1",
    "NUM_NODES": "2",
    "NUM_TRAINERS": "8",
    "HOST_NODE_ADDR": "10.65.0.2:5000",
    "WORLD_SIZE": "16",
}


def launch(
    env: dict,
    gpus_found: int,
    device: str = "gpu",
    fits: bool | None = True,
    method: str = "lora",
    requested: str = "auto",
) -> tuple[topology.Topology, dist.Launch]:
    topo = topology.detect(device, settings.load(env), gpus_found)
    return topo, dist.plan_launch(
        {"base_model": "meta-llama/Llama-3.1-8B-Instruct"},
        CFG,
        topo,
        method,
        requested,
        fits,
        cache=settings.load().cache,
    )


def torchrun_args(argv: list[str]):
    """What torchrun itself makes of the arguments after axolotl's `--`."""
    from torch.distributed.run import get_args_parser

    return get_args_parser().parse_args([*argv[argv.index("--") + 1 :], "-m", "axolotl.cli.train", str(CFG)])


def test_one_gpu_is_a_plain_python_launch():
    topo, lc = launch({}, gpus_found=1)
    assert topo.world_size == 1 and lc.strategy == "none"
    assert lc.argv[1:] == ["train", str(CFG), "--launcher", "python"] and lc.env == {}
    assert lc.config_keys == {}


@pytest.mark.parametrize("gpus", [2, 8])
def test_one_node_many_gpus(gpus):
    topo, lc = launch({}, gpus_found=gpus)
    assert lc.argv[1:] == [
        "train",
        str(CFG),
        "--launcher",
        "torchrun",
        "--",
        "--standalone",
        f"--nproc_per_node={gpus}",
    ]
    parsed = torchrun_args(lc.argv)
    assert parsed.standalone and parsed.nproc_per_node == str(gpus) and parsed.nnodes in ("1", "1:1")
    assert lc.strategy == "ddp" and lc.env == {"TORCH_NCCL_ASYNC_ERROR_HANDLING": "1"}
    assert lc.config_keys["plugins"] == [dist.RANK_PLUGIN] and lc.config_keys["ddp_timeout"] == dist.DDP_TIMEOUT_S


def test_gpus_env_limits_the_processes():
    topo, lc = launch({"GPUS": "2"}, gpus_found=8)
    assert topo.procs_per_node == 2 and "--nproc_per_node=2" in lc.argv


def test_two_nodes_from_plain_env():
    env = {"NODES": "2", "NODE_RANK": "1", "MASTER_ADDR": "192.168.1.10", "MASTER_PORT": "29501"}
    topo, lc = launch(env, gpus_found=8, fits=False)
    assert not topo.is_primary and topo.world_size == 16
    assert lc.argv[lc.argv.index("--") + 1 :] == [
        "--nnodes=2",
        "--node_rank=1",
        "--master_addr=192.168.1.10",
        "--master_port=29501",
        "--nproc_per_node=8",
    ]
    parsed = torchrun_args(lc.argv)
    assert (parsed.nnodes, parsed.node_rank, parsed.master_addr, parsed.master_port) == ("2", 1, "192.168.1.10", 29501)
    assert lc.strategy == "zero3" and lc.config_keys["deepspeed"].endswith("launch/distributed/deepspeed/zero3.json")
    assert "NCCL_SOCKET_IFNAME" not in lc.env  # only RunPod's clusters name their interface


def test_runpod_instant_cluster_env(monkeypatch):
    monkeypatch.delenv("NCCL_SOCKET_IFNAME", raising=False)
    topo, lc = launch(RUNPOD_ENV, gpus_found=8)
    assert topo.runpod_cluster and (topo.nodes, topo.procs_per_node, topo.node_rank) == (2, 8, 1)
    assert (topo.master_addr, topo.master_port) == ("10.65.0.2", 5000)
    parsed = torchrun_args(lc.argv)
    assert (parsed.nnodes, parsed.node_rank, parsed.master_addr, parsed.master_port, parsed.nproc_per_node) == (
        "2",
        1,
        "10.65.0.2",
        5000,
        "8",
    )
    assert lc.env == {"TORCH_NCCL_ASYNC_ERROR_HANDLING": "1", "NCCL_SOCKET_IFNAME": "ens1"}


AXOLOTL_CLI_PROBE = """
import json, os, subprocess, sys
import axolotl.cli.utils.train as axo_train
from axolotl.cli.main import cli
seen = []
# capture the torchrun command axolotl would start (by exec or, in a sweep, by subprocess) instead of running it
axo_train.os.execvpe = lambda file, cmd, env: seen.append(cmd)
axo_train.subprocess.run = lambda cmd, **kw: seen.append(cmd)
try:
    cli.main(args=sys.argv[1:], standalone_mode=False)
finally:
    print("SEEN=" + json.dumps(seen))
"""


def test_axolotl_turns_our_argv_into_this_torchrun_command(tmp_path):
    """Our argv goes through axolotl's real click CLI (in its own process, as `make train` runs it); only its
    final launch of torchrun is captured."""
    import subprocess
    import sys

    _, lc = launch({"NODES": "2", "NODE_RANK": "0", "MASTER_ADDR": "10.0.0.1"}, gpus_found=2)
    cfg = Path(__file__).parent.parent / "recipes" / "smollm2-135m-cpu.yaml"  # any existing file
    args = [a if a != str(CFG) else str(cfg) for a in lc.argv[1:]]
    proc = subprocess.run(
        [sys.executable, "-c", AXOLOTL_CLI_PROBE, *args], capture_output=True, text=True, timeout=300, cwd=tmp_path
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    [seen] = json.loads(proc.stdout.rsplit("SEEN=", 1)[1])
    assert seen[:9] == [
        "torchrun",
        "--nnodes=2",
        "--node_rank=0",
        "--master_addr=10.0.0.1",
        "--master_port=29500",
        "--nproc_per_node=2",
        "-m",
        "axolotl.cli.train",
        str(cfg),
    ]
    assert all(a.startswith("--debug") or a == "--shard=False" for a in seen[9:])  # axolotl's own defaults


def test_strategies_and_their_config_keys():
    topo = topology.detect("gpu", settings.load({}), 4)
    assert dist.choose_strategy("auto", topo, "full", True)[0] == "zero2"
    assert dist.choose_strategy("auto", topo, "full", False)[0] == "zero3"
    assert dist.choose_strategy("auto", topo, "qlora", False)[0] == "zero3"
    keys = dist.config_keys(
        "zero3-offload",
        {"base_model": "x", "plugins": ["axolotl.integrations.liger.LigerPlugin"]},
        cache=settings.load().cache,
    )
    assert keys["plugins"] == ["axolotl.integrations.liger.LigerPlugin", dist.RANK_PLUGIN]
    assert keys["deepspeed"].endswith("zero3-offload.json")
    fsdp = dist.config_keys("fsdp", {"base_model": "Qwen/Qwen3-32B"}, cache=settings.load().cache)
    assert fsdp["fsdp_version"] == 2 and fsdp["fsdp_config"]["transformer_layer_cls_to_wrap"] == "Qwen3DecoderLayer"
    cpu = topology.detect("cpu", settings.load({"CPU_PROCS": "2"}), 0)
    assert dist.choose_strategy("auto", cpu, "lora", None)[0] == "zero3"


DEEPSPEED_CONFIGS = {**dist.ZERO, "zero3-gloo": dist.GLOO_ZERO3}  # gloo: what CPU ranks get under zero3


@pytest.mark.parametrize("name", sorted(DEEPSPEED_CONFIGS))
def test_deepspeed_configs_are_valid_and_avoid_the_known_traps(name):
    from deepspeed.runtime.zero.config import DeepSpeedZeroConfig

    raw = json.loads((dist.DEEPSPEED_DIR / DEEPSPEED_CONFIGS[name]).read_text())
    assert "train_batch_size" not in raw  # "auto" here misreports the world size on CPU (measured)
    assert raw["train_micro_batch_size_per_gpu"] == "auto" and raw["gradient_accumulation_steps"] == "auto"
    zero = {k: (1e6 if v == "auto" else v) for k, v in raw["zero_optimization"].items()}  # HF fills the autos
    parsed = DeepSpeedZeroConfig(**zero)
    assert int(parsed.stage) == int(name[4])
    if parsed.stage == 3:
        assert parsed.gather_16bit_weights_on_model_save  # else a ZeRO-3 LoRA run saves an empty adapter
    assert (parsed.offload_optimizer is not None) == name.endswith("offload")


@pytest.mark.parametrize(
    "env, gpus_found, device, message",
    [
        (
            {"NODES": "3", "NUM_NODES": "2", "NUM_TRAINERS": "8", "PRIMARY_ADDR": "10.0.0.1"},
            8,
            "gpu",
            "NODES=3 but this cluster has NUM_NODES=2",
        ),
        ({"GPUS": "4"}, 2, "gpu", "GPUS=4 but this machine has 2 GPU(s)"),
        ({"NODES": "2"}, 8, "gpu", "needs MASTER_ADDR"),
        ({"NODES": "2", "NODE_RANK": "2", "MASTER_ADDR": "h"}, 8, "gpu", "NODE_RANK=2 but there are only 2 node(s)"),
        ({"GPUS": "two"}, 2, "gpu", "GPUS must be a whole number >= 0, not 'two'"),
        ({**RUNPOD_ENV, "GPUS": "4"}, 8, "gpu", "WORLD_SIZE=16 but 2 node(s) x 4 GPU(s) = 8"),
        ({"GPUS": "2"}, 0, "cpu", "GPUS=2 but this machine trains on CPU"),
    ],
)
def test_bad_topology_is_a_clear_error(env, gpus_found, device, message):
    with pytest.raises(UserError) as err:
        topology.detect(device, settings.load(env), gpus_found)
    assert message in str(err.value)


def test_strategies_that_cannot_run_on_cpu_are_refused():
    cpu = topology.detect("cpu", settings.load({"CPU_PROCS": "2"}), 0)
    for name in ("zero1", "zero2", "fsdp"):
        with pytest.raises(UserError, match="cannot run on CPU"):
            dist.choose_strategy(name, cpu, "lora", None)
    # DDP runs on CPU (tests/test_ddp_cpu.py): accelerate joins gloo, the rank plugin drops the CUDA device map
    lc = dist.plan_launch({"base_model": "x"}, CFG, cpu, "lora", "ddp", None, cache=settings.load().cache)
    assert (
        lc.strategy == "ddp"
        and lc.env["ACCELERATE_USE_CPU"] == "true"
        and dist.RANK_PLUGIN in lc.config_keys["plugins"]
    )
    with pytest.raises(UserError, match="unknown distributed strategy 'zero4'"):
        dist.choose_strategy("zero4", cpu, "lora", None)
