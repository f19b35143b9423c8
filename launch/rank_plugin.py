"""The axolotl plugin half of launch/rank_check.py: each rank writes its weight fingerprint at train end.
Named in a run's config as `plugins: [launch.rank_plugin.RankFingerprintPlugin]` by the launcher."""
from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path

from axolotl.integrations.base import BasePlugin
from transformers import TrainerCallback

from launch.rank_check import RANKS_DIR, fingerprint, normalize


def _gloo_for_cpu_ranks() -> None:
    """Several CPU processes under DeepSpeed: accelerate finds no backend for them (none is passed on the
    DeepSpeed path) and gives every rank process_index 0 and num_processes 1, so each rank wrote the same
    checkpoint files at once (a corrupt trainer_state.json in CI) and read the whole dataset. Naming gloo, the
    backend DeepSpeed itself picks on CPU, gives the Trainer the real ranks. GPUs never take this path."""
    import torch

    if torch.cuda.is_available() or int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return
    from accelerate.state import PartialState

    original = PartialState._prepare_backend
    if getattr(original, "_gloo_for_cpu", False):
        return

    def prepare_backend(self, cpu=False, sagemaker_dp=False, backend=None):  # noqa: ANN001 (accelerate's signature)
        found, kind = original(self, cpu, sagemaker_dp, backend)
        return found or "gloo", kind

    prepare_backend._gloo_for_cpu = True  # type: ignore[attr-defined]
    PartialState._prepare_backend = prepare_backend


_gloo_for_cpu_ranks()


class _WriteFingerprint(TrainerCallback):
    def __init__(self, output_dir: str):
        self.output_dir = Path(output_dir)

    def on_train_end(self, args, state, control, model=None, **kwargs):  # noqa: ANN001 (HF callback API)
        params = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
        gather = contextlib.nullcontext()
        if any(hasattr(p, "ds_id") for _, p in params):  # ZeRO-3 partitions: gather the full tensors
            import deepspeed

            gather = deepspeed.zero.GatheredParameters([p for _, p in params], modifier_rank=None)
        with gather:
            record = fingerprint([(normalize(n), p) for n, p in params])
        rank = int(os.environ.get("RANK", "0"))
        record.update(rank=rank, world_size=int(os.environ.get("WORLD_SIZE", "1")), global_step=state.global_step)
        out = self.output_dir / RANKS_DIR
        out.mkdir(parents=True, exist_ok=True)
        tmp = out / f".rank{rank}.json.tmp"
        tmp.write_text(json.dumps(record))
        os.replace(tmp, out / f"rank{rank}.json")


class RankFingerprintPlugin(BasePlugin):
    def add_callbacks_post_trainer(self, cfg, trainer):  # noqa: ANN001 (axolotl plugin API)
        return [_WriteFingerprint(cfg.output_dir)]
