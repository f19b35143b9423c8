"""`make plan RECIPE=x GPU=H100 GPUS=8 [NODES=2] [STRATEGY=zero3]`: does it fit, what it needs and costs,
and the exact launch command, without running anything. Refuses (exit 2) a plan that does not fit and
says what would."""

from __future__ import annotations

import argparse
import copy
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core import cli
from core.errors import UserError, Where
from core.settings import Settings
from launch.distributed import strategy as dist
from launch.distributed.topology import Topology
from launch.preflight import estimate as est
from launch.preflight import preference_cost as cost
from resolver import facts
from resolver.resolve import RUN_PLACEHOLDER, Resolved, resolve

CONTAINER_DISK_GB = 40  # image layers are separate; this is pip/triton caches and /tmp
SUITES = Path(__file__).resolve().parents[2] / "eval" / "suites"
LMEVAL_TOKENS = 128  # eval/lmeval.py's max_gen_toks
# Where each strategy has really run (the tests); the rest waits for a GPU (docs/check-and-plan.md).
TESTED = {
    "none": "ran here: one process, CPU end to end (make test); on a GPU not yet measured",
    "ddp": "ran here: 2 CPU processes on gloo (tests/test_ddp_cpu.py); on GPUs (NCCL) not yet measured",
    "zero3": "ran here: 2 CPU processes on gloo (tests/test_distributed_cpu.py); on GPUs (NCCL) not yet measured",
}
UNTESTED = "UNTESTED here: it does not run on CPU (launch/distributed/strategy.py CPU_BROKEN) and no GPU has run it yet"


@dataclass
class Plan:
    resolved: Resolved
    gpu: dict[str, Any]
    topology: Topology
    launch: dist.Launch
    model: est.Model
    memory: est.Memory
    disk: est.Disk
    tokens_per_epoch: int
    rows: int
    train_s: float
    download_s: float
    alternatives: list[str]
    evaluation: est.Evaluation | None = None
    eval_counts: tuple[int, int, int] = (0, 0, 0)  # suite prompts, held-out docs, max_new_tokens

    @property
    def hours(self) -> float:
        return (self.train_s + self.download_s) / 3600

    @property
    def usd(self) -> float:
        return self.hours * self.gpu["usd_per_hour"] * self.topology.world_size

    @property
    def volume_gb(self) -> int:
        """Network volume to ask for: the disk estimate plus 20 %, in 10 GB steps."""
        return est.volume_gb(self.disk.total)


def _memory(m: est.Model, config: dict, strategy: str, world: int, vram: float) -> est.Memory:
    return cost.memory(m, config, strategy, world, vram)


def alternatives(m: est.Model, config: dict, gpu: dict, world: int, strategy: str, gpus: dict) -> list[str]:
    """Changes that would make a plan that does not fit, fit (each checked with the same formulas)."""
    out = []
    vram = gpu["vram_gib"]
    if not config.get("gradient_checkpointing"):
        c = {**config, "gradient_checkpointing": True}
        if _memory(m, c, strategy, world, vram).fits:
            out.append("gradient_checkpointing: true")
    if (
        world > 1
        and strategy not in ("zero3", "fsdp", "zero3-offload")
        and _memory(m, config, "zero3", world, vram).fits
    ):
        out.append(f"STRATEGY=zero3 on the same {world} GPUs")
    for n in (2, 4, 8, 16):
        if n > world and _memory(m, config, "zero3", n, vram).fits:
            out.append(f"GPUS={n} (ZeRO-3 shards the model {n} ways)")
            break
    if config.get("adapter") == "lora" and not config.get("load_in_8bit") and not config.get("load_in_4bit"):
        c = {**config, "load_in_8bit": True}
        if _memory(m, c, strategy, world, vram).fits:
            out.append("LoRA on an 8-bit base (load_in_8bit: true): 1 byte per base weight")
    if config.get("adapter") == "lora" and not config.get("load_in_4bit"):
        c = {**config, "adapter": "qlora", "load_in_4bit": True, "load_in_8bit": False}
        if _memory(m, c, strategy, world, vram).fits:
            out.append("QLoRA (extends: fragments/method/qlora.yaml): 4-bit base weights")
    bigger = sorted((row["vram_gib"], name) for name, row in gpus.items() if row["vram_gib"] > vram)
    for v, name in bigger:
        if _memory(m, config, strategy, world, v).fits:
            out.append(f"GPU={name} ({v} GiB)")
            break
    if world > 1 and strategy != "zero3-offload" and _memory(m, config, "zero3-offload", world, vram).fits:
        out.append("STRATEGY=zero3-offload (optimizer and weights in CPU RAM; slower)")
    return out


def suggest_gpu(m: est.Model, config: dict, table: dict) -> tuple[str, int]:
    """The cheapest GPU type in the table's `gpus` that holds one full copy (then 2, 4, 8 of the cheapest that fit
    with ZeRO-3): what a recipe without meta.gpu is planned for, and what `make new` writes."""
    for count, strategy in ((1, "ddp"), (2, "zero3"), (4, "zero3"), (8, "zero3")):
        fitting = [
            (row["usd_per_hour"] * count, name)
            for name, row in table.items()
            if _memory(m, config, strategy, count, row["vram_gib"]).fits
        ]
        if fitting:
            return min(fitting)[1], count
    return max(table, key=lambda n: table[n]["vram_gib"]), 8


def make_plan(
    recipe: str,
    s: Settings,
    gpu_name: str | None = None,
    gpus: int | None = None,
    nodes: int = 1,
    strategy: str | None = None,
    args: str | None = None,
) -> Plan:
    r = resolve(recipe, s, device="gpu", args=args)
    base = r.hub_base_model
    table = est.gpu_table(s.gpu_table)
    if (
        not facts.is_path(base)
        and facts.find(base, cache=s.cache) is None
        and facts.find(r.config["base_model"], cache=s.cache) is None
        and facts.online(s)
    ):
        facts.fetch(base, s)  # its small files, as make check does: the plan needs its sizes
        r = resolve(recipe, s, device="gpu", args=args)
    meta = r.meta
    if meta.gpu is None:  # a config without meta.gpu: the plan suggests one
        from resolver.meta import GpuSuggestion

        name, count = suggest_gpu(est.model_facts(r.config, r.hub_base_model, s.cache), r.config, table["gpus"])
        meta = meta.model_copy(update={"gpu": GpuSuggestion(type=name, count=count)})
    gpu_name = gpu_name or meta.gpu.type
    if gpu_name.upper() == "CPU":
        raise UserError(
            f"{r.recipe.name} is a CPU recipe; make plan sizes GPU runs",
            Where(r.recipe.path, key="meta.gpu"),
            "pass GPU=<type>, e.g. GPU=L4",
        )
    row = est.gpu(gpu_name, s)
    per_node = gpus or max(meta.gpu.count, 1)
    topo = Topology(
        device="gpu",
        nodes=nodes,
        procs_per_node=per_node,
        master_addr="$MASTER_ADDR" if nodes > 1 else None,
        source="the plan's GPU/GPUS/NODES",
    )
    base = r.hub_base_model
    m = est.model_facts(r.config, base, s.cache)
    replicated = _memory(m, r.config, "ddp", 1, row["vram_gib"])
    requested = strategy or dist.requested_strategy(meta.distributed, s)
    config_path = Path(RUN_PLACEHOLDER.format(recipe=r.recipe.name)) / "config.yaml"
    launch = dist.plan_launch(
        r.config, config_path, topo, meta.method, requested, replicated.fits, r.where("meta.distributed"), cache=s.cache
    )
    config = copy.deepcopy(r.config)
    config.update(launch.config_keys)
    mem = _memory(m, config, launch.strategy, topo.world_size, row["vram_gib"])
    tokens, rows = cost.training_tokens(config)
    train_s = cost.train_seconds(m, config, topo.world_size, row, tokens)
    download_s = m.params * 2.0 / (float(table.get("download_gb_per_s", 0.5)) * 1e9)
    alts = [] if mem.fits else alternatives(m, config, row, topo.world_size, launch.strategy, table["gpus"])
    counts = eval_counts(r, meta)
    evaluation = est.evaluation(m, row, counts[0], counts[1], counts[2], LMEVAL_TOKENS)
    return Plan(
        r, row, topo, launch, m, mem, est.disk(m, config), tokens, rows, train_s, download_s, alts, evaluation, counts
    )


def _lines(path: Path) -> int:
    try:
        return sum(1 for line in path.read_text(encoding="utf-8").splitlines() if line.strip())
    except OSError:
        return 0


def eval_counts(r: Resolved, meta) -> tuple[int, int, int]:
    """(judging prompts in the recipe's suite, held-out docs for lm-eval, the recipe's max_new_tokens)."""
    from data.entries import dataset_file

    prompts = _lines(SUITES / f"{meta.eval_suite}.jsonl") if meta.eval_suite else 0
    docs = 0
    for ds in r.config.get("test_datasets") or []:
        try:
            docs += _lines(dataset_file(ds))
        except UserError:
            continue
    return prompts, docs, meta.sampling.max_new_tokens


def _duration(seconds: float) -> str:
    return f"~{seconds:.0f} s" if seconds < 120 else f"~{seconds / 60:.0f} min"


def evaluation_line(p: Plan) -> str:
    e, (prompts, docs, max_new) = p.evaluation, p.eval_counts
    fits = "fits" if e.memory_gib <= p.gpu["vram_gib"] else "DOES NOT FIT one GPU: evaluate on a bigger one"
    return (
        f"evaluation (after training, on one {p.gpu['name']}, bf16): ~{e.memory_gib:.1f} GiB ({fits}); judging "
        f"{prompts} prompts x 2 models x {max_new} tokens {_duration(e.judge_s)} (batches of {e.batch}), lm-eval "
        f"{docs} docs x {LMEVAL_TOKENS} tokens {_duration(e.lmeval_s)} (decoding bound by {e.bandwidth:.0f} GB/s); "
        "on a CPU box: llama.cpp on the run's parity-checked GGUF"
    )


def report(p: Plan) -> str:
    r, t, mem = p.resolved, p.topology, p.memory
    epochs = r.config.get("num_epochs") or 1
    lines = [
        f"plan: {r.recipe.name} ({r.hub_base_model}, {r.meta.method}) on {t.nodes} node(s) x "
        f"{t.procs_per_node} {p.gpu['name']} ({p.gpu['vram_gib']} GiB each)",
        f"strategy: {p.launch.strategy} ({p.launch.why})",
        f"params: {p.model.params / 1e9:.2f} B total, {p.model.trainable / 1e6:.1f} M trained",
        f"memory per GPU (GiB; {est.attention_of(r.config)} attention"
        + (", seq x seq scores stored" if est.stores_scores(r.config) else ", no seq x seq scores stored")
        + "): "
        + ", ".join(f"{k} {v:.1f}" for k, v in mem.parts.items() if v >= 0.05)
        + f"; with overhead {mem.total:.1f} of {mem.available:.1f} usable -> "
        + ("FITS" if mem.fits else "DOES NOT FIT"),
        "disk (GB): "
        + ", ".join(f"{k} {v:.1f}" for k, v in p.disk.parts.items())
        + f"; total {p.disk.total:.1f} -> network volume {p.volume_gb} GB, container disk {CONTAINER_DISK_GB} GB",
        f"data: {p.rows} rows, ~{p.tokens_per_epoch:,} tokens/epoch (characters / {est.CHARS_PER_TOKEN}) x {epochs} epochs",
        f"time: ~{p.train_s / 60:.0f} min training + ~{p.download_s / 60:.0f} min model download "
        f"(assumed MFU {p.gpu['mfu']:g}; trust to a factor of 2)",
        f"cost: {t.world_size} x ${p.gpu['usd_per_hour']:.2f}/h x {p.hours:.2f} h = ${p.usd:.2f} "
        f"(prices as of {est.gpu_table(r.settings.gpu_table).get('as_of')}"
        + (", PRICE_PER_HOUR" if p.gpu.get("price_source") else "")
        + ")",
        f"launch (node rank {t.node_rank}): {p.launch.shell()}",
        f"tested: {p.launch.strategy}: {TESTED.get(p.launch.strategy, UNTESTED)}",
    ]
    if (preference := cost.plan_line(r.config, p.model, p.gpu, t.world_size)) is not None:
        lines.append(preference)
    if p.evaluation is not None:
        lines.append(evaluation_line(p))
    if not mem.fits:
        lines.append(
            "would fit: "
            + (
                "; ".join(p.alternatives)
                if p.alternatives
                else "nothing in the GPU table at this size; use more nodes or a smaller model"
            )
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("recipe", nargs="?", help="(default: RECIPE, else the embedded recipe)")
    parser.add_argument("--args", default=None, help="recipe overrides (default: ARGS)")
    ns = parser.parse_args(argv)

    def body(s: Settings) -> None:
        if s.gpus == 0:
            raise UserError("GPUS must be at least 1 for a plan, not 0", Where(key="GPUS"))
        p = make_plan(
            ns.recipe or s.recipe_or_default,
            s,
            s.gpu,
            s.gpus,
            s.nodes or 1,
            s.strategy,
            ns.args if ns.args is not None else s.args,
        )
        print(report(p))
        if not p.memory.fits:
            raise UserError(
                f"{p.resolved.recipe.name} needs ~{p.memory.total:.0f} GiB per GPU; "
                f"{p.gpu['name']} has {p.memory.available:.1f} usable",
                hint="see 'would fit' above",
            )

    return cli.main(body)


if __name__ == "__main__":
    sys.exit(main())
