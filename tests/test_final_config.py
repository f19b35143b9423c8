"""The config that really runs passes axolotl's validator: for every recipe in recipes/ and every strategy `make plan`
can choose, the resolved config plus the keys the strategy adds (deepspeed, fsdp_config, ddp_timeout, the rank
plugin) plus the seed plugin (launch/execute.run_config), validated with the capabilities of the recipe's GPU.
The same on CPU for the strategies that run there. Parametrized over the folder and the strategy list."""

from __future__ import annotations

from pathlib import Path

import pytest

from core import settings
from launch.distributed import strategy as dist
from launch.distributed.topology import Topology
from launch.execute import SEED_PLUGIN, run_config
from launch.preflight import schema
from resolver.registry import list_recipes, load_recipe
from resolver.resolve import resolve

CFG = Path("/runs/x/config.yaml")
GPU_STRATEGIES = [s for s in dist.STRATEGIES if s != "auto"]
CPU_STRATEGIES = [s for s in GPU_STRATEGIES if s not in dist.CPU_BROKEN]
GPU_RECIPES = [n for n in list_recipes() if (load_recipe(n).meta.gpu is None or load_recipe(n).meta.gpu.count > 0)]


def final(name: str, device: str, strategy: str) -> tuple[dict, dist.Launch, int]:
    r = resolve(name, settings.load(), device=device)
    procs = 1 if strategy == "none" else 2
    topo = Topology(device=device, procs_per_node=procs)
    launch = dist.plan_launch(r.config, CFG, topo, r.recipe.meta.method, strategy, True, cache=settings.load().cache)
    return run_config(r.config, launch), launch, procs


@pytest.mark.parametrize("strategy", GPU_STRATEGIES)
@pytest.mark.parametrize("name", GPU_RECIPES)
def test_the_final_gpu_config_is_valid(name, strategy):
    config, launch, gpus = final(name, "gpu", strategy)
    assert launch.strategy == strategy
    assert SEED_PLUGIN in config["plugins"] and (strategy == "none") == (dist.RANK_PLUGIN not in config["plugins"])
    if strategy in dist.ZERO:
        assert Path(config["deepspeed"]).is_file()
    meta = load_recipe(name).meta
    normalized = schema.validate(config, "gpu", meta.gpu.type if meta.gpu else None, gpus)
    assert normalized["base_model"] == config["base_model"]


@pytest.mark.parametrize("strategy", CPU_STRATEGIES)
@pytest.mark.parametrize("name", list_recipes())
def test_the_final_cpu_config_is_valid(name, strategy):
    config, launch, procs = final(name, "cpu", strategy)
    assert launch.strategy == strategy
    if strategy == "zero3":
        assert config["deepspeed"].endswith(dist.GLOO_ZERO3)
    schema.validate(config, "cpu", None, procs)


def test_the_validator_does_reject_a_broken_final_config():
    config, _, gpus = final("qwen25-3b-instruct-brie", "gpu", "zero3")
    from axolotl.utils.schemas.config import AxolotlInputConfig

    # two sharding systems at once; axolotl 0.20 dropped the top-level `fsdp` list for `fsdp_config`
    if "fsdp" in AxolotlInputConfig.model_fields:
        config["fsdp"] = ["full_shard", "auto_wrap"]
    else:
        config["fsdp_config"] = {"fsdp_version": 2, "reshard_after_forward": True}
    with pytest.raises(Exception) as err:
        schema.validate(config, "gpu", "H100", gpus)
    assert "deepspeed" in str(err.value).lower() and "fsdp" in str(err.value).lower()
