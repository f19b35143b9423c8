"""Run by tests/test_zero3_gloo.py under torchrun (2 gloo ranks): ZeRO-3 with the zero_optimization section of a
DeepSpeed config file from launch/distributed/deepspeed, then many gathers of all parameters at once (what saving and
the rank fingerprint do). Prints how many gathers read a value different from the true weights."""

from __future__ import annotations

import json
import sys

import deepspeed
import torch


def main() -> None:
    config_file, gathers = sys.argv[1], int(sys.argv[2])
    with open(config_file) as fh:
        zero = json.load(fh)["zero_optimization"]
    zero = {k: v for k, v in zero.items() if v != "auto"}
    zero["stage3_param_persistence_threshold"] = 0  # every tensor partitioned, as the LoRA B matrices of a real run
    deepspeed.init_distributed("gloo")
    torch.manual_seed(0)
    model = torch.nn.Sequential(*[torch.nn.Linear(64, 64, bias=False) for _ in range(28)])
    truth = [p.detach().clone() for p in model.parameters()]
    config = {
        "train_micro_batch_size_per_gpu": 1,
        "zero_optimization": zero,
        "optimizer": {"type": "AdamW", "params": {"lr": 1e-3}},
    }
    engine, *_ = deepspeed.initialize(model=model, model_parameters=list(model.parameters()), config=config)
    params = list(engine.module.parameters())
    wrong = 0
    for _ in range(gathers):
        with deepspeed.zero.GatheredParameters(params, modifier_rank=None):
            wrong += any(not torch.equal(p.data, t) for p, t in zip(params, truth, strict=True))
    print(f"GATHERS rank={torch.distributed.get_rank()} wrong={wrong} of={gathers}", flush=True)


if __name__ == "__main__":
    main()
