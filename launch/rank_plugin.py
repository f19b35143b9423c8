"""The axolotl plugin half of launch/rank_check.py, added by the launcher to multi-process runs.

register (at config load, in every rank, before the Trainer exists): on CPU ranks under DeepSpeed, name gloo as
accelerate's backend. accelerate 1.13 resolves a backend only for accelerator devices or when cpu=True, and the HF
Trainer passes `ddp_backend` only on its non-DeepSpeed branch, so no environment variable or config key reaches it:
without this every rank got process_index 0 and num_processes 1, wrote the same checkpoint files at once and read
the whole dataset. (Measured alternatives: ACCELERATE_USE_CPU=true turns DeepSpeed off; a pre-built
PartialState(backend="gloo") with accelerator_config.use_configured_state is accepted, but the Trainer then saves
as one process and the adapter's sharded tensors come out empty.) GPUs never take this path.
Also at register, on CPU ranks: answer axolotl's CUDA peer-to-peer probe (prepare_optim_env, right after the plugins
load) without asking torch. It calls torch.cuda.can_device_access_peer for every multi-process run and only catches
the AssertionError of a CPU-only torch; the CUDA build of torch (the lock's, on a machine without a GPU) raises
"Found no NVIDIA driver" instead and every rank died before training. P2P is an NCCL question; gloo has none.
load_datasets (the last hook that sees axolotl's normalized config before the model loader reads it): on CPU ranks
of a plain DDP run, drop the device map. axolotl's normalize_config gives every multi-process run
device_map {"": LOCAL_RANK}, a CUDA device index, even after its own choose_device() cleared it for accelerate
(ACCELERATE_USE_CPU=true, which DDP on CPU needs to join a gloo group); rank 1 then asks for cuda:1. Without a
device map the model loads on the CPU and the Trainer's DDP wraps it. ZeRO-3 and FSDP set no device map.
post_trainer_create: checks that the Trainer sees the real ranks, so a broken backend is an error, not a guess.
on_train_end: every rank writes a fingerprint of its (ZeRO-3-gathered) trainable weights.
The settings (WORLD_SIZE, RANK from torchrun) are read once per rank, at register: axolotl calls the plugin, so
that hook is this process's entry point into affinage.
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path

from axolotl.integrations.base import BasePlugin
from transformers import TrainerCallback

from core import settings
from core.settings import Settings
from launch.rank_check import RANKS_DIR, fingerprint, normalize


def name_gloo_for_cpu_ranks(world_size: int) -> bool:
    """Wrap accelerate's backend resolution so CPU ranks get gloo (the backend DeepSpeed itself picks on CPU).
    Returns whether it applied."""
    import torch

    if torch.cuda.is_available() or world_size <= 1:
        return False
    from accelerate.state import PartialState

    original = PartialState._prepare_backend
    if getattr(original, "_gloo_for_cpu", False):
        return True

    def prepare_backend(self, cpu=False, sagemaker_dp=False, backend=None):
        found, kind = original(self, cpu, sagemaker_dp, backend)
        return found or "gloo", kind

    prepare_backend._gloo_for_cpu = True  # type: ignore[attr-defined]
    PartialState._prepare_backend = prepare_backend
    return True


def skip_cuda_peer_probe(world_size: int) -> bool:
    """On CPU ranks, answer axolotl's P2P/InfiniBand probe (axolotl.utils.trainer.prepare_optim_env) with "fine"
    instead of initialising CUDA. Returns whether it applied."""
    import torch

    if torch.cuda.is_available() or world_size <= 1:
        return False
    import axolotl.utils.trainer as trainer

    trainer.check_cuda_p2p_ib_support = lambda: True
    return True


def gathered(params: list):
    """Full tensors of ZeRO-3 partitions, one parameter at a time: DeepSpeed's coalesced gather of several
    parameters waits only for the last of its async all-gathers, which on gloo (out-of-order worker threads)
    lets earlier tensors be read while still unfilled (measured: ~5 % of gathers under load)."""
    if not any(hasattr(p, "ds_id") for p in params):
        return contextlib.nullcontext()
    import deepspeed

    stack = contextlib.ExitStack()
    for p in params:
        stack.enter_context(deepspeed.zero.GatheredParameters([p], modifier_rank=None))
    return stack


class _WriteFingerprint(TrainerCallback):
    def __init__(self, output_dir: str, s: Settings):
        self.output_dir, self.s = Path(output_dir), s

    def on_train_end(self, args, state, control, model=None, **kwargs):
        params = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
        with gathered([p for _, p in params]):
            record = fingerprint([(normalize(n), p) for n, p in params])
        s = self.s
        rank = s.rank or 0
        record.update(rank=rank, world_size=s.world_size or 1, global_step=state.global_step)
        out = self.output_dir / RANKS_DIR
        out.mkdir(parents=True, exist_ok=True)
        tmp = out / f".rank{rank}.json.tmp"
        tmp.write_text(json.dumps(record))
        os.replace(tmp, out / f"rank{rank}.json")


def cpu_device_map(cfg) -> bool:
    """Clear the CUDA device map axolotl sets for a multi-process run when the ranks are CPU processes (plain
    DDP: ZeRO-3 and FSDP place the model themselves). Returns whether it applied."""
    import torch

    if torch.cuda.is_available() or (cfg.world_size or 1) <= 1 or cfg.deepspeed or cfg.fsdp_config:
        return False
    if isinstance(cfg.device_map, dict) and all(isinstance(v, int) for v in cfg.device_map.values()):
        cfg.device_map = None
        return True
    return False


class RankFingerprintPlugin(BasePlugin):
    s: Settings

    def register(self, cfg):
        self.s = settings.load()
        name_gloo_for_cpu_ranks(self.s.world_size or 1)
        skip_cuda_peer_probe(self.s.world_size or 1)

    def load_datasets(self, cfg, preprocess=False):
        cpu_device_map(cfg)
        return None  # axolotl loads the datasets itself

    def post_trainer_create(self, cfg, trainer):
        s = self.s
        world = s.world_size or 1
        if trainer.args.world_size != world or trainer.args.process_index != (s.rank or 0):
            raise RuntimeError(
                f"the Trainer sees rank {trainer.args.process_index} of {trainer.args.world_size}, but "
                f"torchrun started rank {s.rank} of {world}: the ranks would train apart"
            )

    def add_callbacks_post_trainer(self, cfg, trainer):
        return [_WriteFingerprint(cfg.output_dir, self.s)]
