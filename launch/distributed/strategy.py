"""How a run is launched on its topology: the strategy (none, DDP, DeepSpeed ZeRO-1/2/3, ZeRO-3 offload,
FSDP), the config keys it adds, and the one command line (plus environment) that starts training.

1 process: `axolotl train cfg --launcher python`. More: `axolotl train cfg --launcher torchrun -- <torchrun
args>`, torchrun being the launcher axolotl itself wraps; the DeepSpeed JSONs live in launch/distributed/deepspeed/.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.errors import UserError, Where
from core.paths import REPO
from core.settings import STRATEGIES as _ALL
from core.settings import Settings
from launch.distributed.topology import RUNPOD_NCCL_IFNAME, Topology
from resolver.meta import ADAPTER_METHODS

DEEPSPEED_DIR = Path(__file__).with_name("deepspeed")
ZERO = {"zero1": "zero1.json", "zero2": "zero2.json", "zero3": "zero3.json", "zero3-offload": "zero3-offload.json"}
# CPU ranks (gloo) run ZeRO-3 with sequential all-gathers: DeepSpeed's coalesced gather of several parameters
# (GatheredParameters: saving, the rank fingerprint) waits only for its last async all-gather, which is enough
# on NCCL's in-order stream but not on gloo's worker threads, where earlier tensors were read still unfilled
# (tests/test_zero3_gloo.py). overlap_comm has no stream to overlap on CPU.
GLOO_ZERO3 = "zero3-gloo.json"
STRATEGIES = _ALL  # ("auto", "none", "ddp", *ZERO, "fsdp"), one list for settings, meta and the launcher
RANK_PLUGIN = "launch.rank_plugin.RankFingerprintPlugin"
DDP_TIMEOUT_S = 3600  # a ZeRO-3 gather-and-save of a 32B model can outlast the 30-minute default
# Measured on CPU (gloo) with stock axolotl (docs/training.md): ZeRO-3 and DDP run (DDP with ACCELERATE_USE_CPU
# and the rank plugin's device map, launch/rank_plugin.py); these do not.
CPU_BROKEN = {
    "zero1": "ZeRO-1/2 fail on gloo at the optimizer step (all_gather_into_tensor); use STRATEGY=zero3",
    "zero2": "ZeRO-1/2 fail on gloo at the optimizer step (all_gather_into_tensor); use STRATEGY=zero3",
    "fsdp": "FSDP is not supported on CPU here; use STRATEGY=zero3",
}


@dataclass
class Launch:
    strategy: str
    why: str
    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)
    config_keys: dict[str, Any] = field(default_factory=dict)

    def shell(self) -> str:
        import shlex

        env = " ".join(f"{k}={shlex.quote(v)}" for k, v in sorted(self.env.items()))
        return (env + " " if env else "") + shlex.join(self.argv)


def choose_strategy(
    requested: str, topo: Topology, method: str, fits_replicated: bool | None, where: Where | None = None
) -> tuple[str, str]:
    """(strategy, why). `fits_replicated`: whether a full copy of the model fits on one GPU (None: unknown)."""
    if requested not in STRATEGIES:
        raise UserError(f"unknown distributed strategy '{requested}'", where, f"one of: {', '.join(STRATEGIES)}")
    if topo.world_size == 1:
        if requested not in ("auto", "none"):
            return "none", f"{requested} asked for, but a single process needs no sharding"
        return "none", "one process"
    if requested != "auto":
        if topo.device == "cpu" and requested in CPU_BROKEN:
            raise UserError(f"STRATEGY={requested} cannot run on CPU: {CPU_BROKEN[requested]}", where)
        if requested == "none":
            raise UserError(
                "strategy 'none' with more than one process would train the ranks apart",
                where,
                "use ddp, zero1/2/3 or fsdp, or GPUS=1",
            )
        return requested, "as the recipe/STRATEGY says"
    if topo.device == "cpu":
        return "zero3", "CPU processes: ZeRO-3 is the strategy that runs on gloo"
    if method in ADAPTER_METHODS and fits_replicated:
        return "ddp", "the base model fits on each GPU; LoRA gradients are small, so plain data parallel"
    if method in ("qlora", "lora-8bit"):
        return "zero3", "the quantized base does not fit on one GPU: ZeRO-3 shards it"
    if fits_replicated:
        return "zero2", "full fine-tune: ZeRO-2 shards gradients and optimizer state"
    return "zero3", "the model does not fit on one GPU: ZeRO-3 shards weights, gradients and optimizer state"


def decoder_layer_class(base_model: str, cache: Path) -> str:
    """The transformer block class FSDP wraps, from the architecture on the meta device."""
    from resolver.architecture import block_class

    return block_class(base_model, cache=cache)


def config_keys(strategy: str, config: dict[str, Any], device: str = "gpu", *, cache: Path) -> dict[str, Any]:
    """The axolotl keys a strategy sets (applied after the hardware profile and the user's ARGS); `cache`
    (AFFINAGE_CACHE) keeps the module tree FSDP's wrap class is read from."""
    keys: dict[str, Any] = {}
    if strategy == "none":
        return keys
    plugins = [p for p in (config.get("plugins") or []) if p != RANK_PLUGIN]
    keys["plugins"] = [*plugins, RANK_PLUGIN]
    keys["ddp_timeout"] = config.get("ddp_timeout") or DDP_TIMEOUT_S
    if strategy in ZERO:
        name = GLOO_ZERO3 if device == "cpu" and strategy == "zero3" else ZERO[strategy]
        keys["deepspeed"] = str(DEEPSPEED_DIR / name)
    elif strategy == "fsdp":
        keys["fsdp_version"] = 2
        keys["fsdp_config"] = {
            "offload_params": False,
            "cpu_ram_efficient_loading": True,
            "auto_wrap_policy": "TRANSFORMER_BASED_WRAP",
            "transformer_layer_cls_to_wrap": decoder_layer_class(config["base_model"], cache),
            "state_dict_type": "FULL_STATE_DICT",
            "reshard_after_forward": True,
        }
    return keys


def command(config_path: Path, topo: Topology, strategy: str) -> tuple[list[str], dict[str, str]]:
    """argv and the extra environment for this node."""
    axolotl = str(Path(sys.executable).with_name("axolotl"))
    if topo.world_size == 1:
        return [axolotl, "train", str(config_path), "--launcher", "python"], {}
    if topo.nodes == 1:
        rendezvous = ["--standalone"]
    else:
        rendezvous = [
            f"--nnodes={topo.nodes}",
            f"--node_rank={topo.node_rank}",
            f"--master_addr={topo.master_addr}",
            f"--master_port={topo.master_port}",
        ]
    argv = [
        axolotl,
        "train",
        str(config_path),
        "--launcher",
        "torchrun",
        "--",
        *rendezvous,
        f"--nproc_per_node={topo.procs_per_node}",
    ]
    env: dict[str, str] = {}
    if topo.device == "cpu":
        # torchrun would pin each process to 1 thread; share the cores instead
        env["OMP_NUM_THREADS"] = str(max(1, (os.cpu_count() or 1) // topo.procs_per_node))
        if strategy == "ddp":  # without it accelerate never joins a CPU process group (measured)
            env["ACCELERATE_USE_CPU"] = "true"
    else:
        env["TORCH_NCCL_ASYNC_ERROR_HANDLING"] = "1"  # a dead peer ends the job instead of hanging it
        if topo.runpod_cluster and topo.nodes > 1:
            env["NCCL_SOCKET_IFNAME"] = topo.nccl_socket_ifname or RUNPOD_NCCL_IFNAME
    return argv, env


def plan_launch(
    config: dict[str, Any],
    config_path: Path,
    topo: Topology,
    method: str,
    requested: str,
    fits_replicated: bool | None,
    where: Where | None = None,
    *,
    cache: Path,
) -> Launch:
    strategy, why = choose_strategy(requested, topo, method, fits_replicated, where)
    argv, env = command(config_path, topo, strategy)
    return Launch(strategy, why, argv, env, config_keys(strategy, config, topo.device, cache=cache))


def requested_strategy(meta_strategy: str, s: Settings) -> str:
    """STRATEGY= (validated in core/settings.py) wins over the recipe's meta.distributed."""
    return s.strategy or meta_strategy


def relative(path: str) -> str:
    p = Path(path)
    return str(p.relative_to(REPO)) if p.is_absolute() and p.is_relative_to(REPO) else path
