"""Packing efficiency on the Brie data, measured with axolotl's own pieces on CPU (no GPU needed): axolotl tokenizes
the data with the recipe's chat template (axolotl.common.datasets.load_datasets, the dataset preparation training
uses), and axolotl's MultipackBatchSampler packs the tokenized lengths with the parameters its trainer gives it
(batch_max_len = micro_batch x sequence_len, one packed row per step, the sampler's group and bin sizes).
efficiency() is the sampler's own: real tokens / token slots. Beside it: the seeds' padded batches of the same
micro batch (real tokens / micro_batch x the longest row of each batch). The tokenizer is the embedded recipe's
(SmolLM2, offline); the Brie recipes' own tokenizers differ by a few percent in lengths."""

from __future__ import annotations

import dataclasses
import math
import tempfile
from pathlib import Path
from typing import Any

from core import stdio_restore
from core.paths import REPO
from core.settings import DEFAULT_RECIPE, Settings
from core.yamlio import dump

BRIE = REPO.parent / "shared" / "brie"
FILES = ("sft.train.sample.jsonl", "sft.val.jsonl")


def _defaults() -> dict[str, Any]:
    from axolotl.core.training_args_base import AxolotlTrainingMixins

    return {f.name: f.default for f in dataclasses.fields(AxolotlTrainingMixins)}


def padded_share(lengths, micro_batch: int) -> float:
    real = slots = 0
    for i in range(0, len(lengths), micro_batch):
        batch = [int(n) for n in lengths[i : i + micro_batch]]
        real += sum(batch)
        slots += len(batch) * max(batch)
    return real / slots if slots else 0.0


@stdio_restore.restored()  # axolotl's load_cfg and numba rewire stdio and logging in this process
def measure(
    s: Settings, folder: Path = BRIE, sequence_len: int = 2048, micro_batch: int = 2, work: Path | None = None
) -> dict:
    files = [folder / f for f in FILES]
    missing = [str(f) for f in files if not f.is_file()]
    if missing:
        reason = f"not measured: the Brie data is absent ({', '.join(missing)})"
        print(f"packing: {reason}")
        return {"status": reason}
    import numpy as np
    from axolotl.cli.config import load_cfg
    from axolotl.common.datasets import load_datasets
    from axolotl.utils.samplers import MultipackBatchSampler, get_dataset_lengths
    from torch.utils.data import SequentialSampler

    from resolver.resolve import resolve

    work = Path(work or tempfile.mkdtemp(prefix="packing-"))
    work.mkdir(parents=True, exist_ok=True)
    data = work / "brie.jsonl"
    data.write_text("".join(f.read_text(encoding="utf-8") for f in files), encoding="utf-8")
    args = {
        "datasets.0.path": str(data),
        "sequence_len": sequence_len,
        "micro_batch_size": micro_batch,
        "test_datasets": None,
        "eval_steps": None,
    }
    r = resolve(DEFAULT_RECIPE, s, device="cpu", args=args, run_dir=work / "run", materialize=True)
    (work / "config.yaml").write_text(dump(r.config))
    cfg = load_cfg(str(work / "config.yaml"))
    dataset = load_datasets(cfg=cfg).train_dataset
    lengths = np.asarray(get_dataset_lengths(dataset))
    defaults = _defaults()
    sampler = MultipackBatchSampler(
        SequentialSampler(range(len(lengths))),
        lengths=lengths,
        batch_max_len=micro_batch * sequence_len,
        batch_size=1,
        group_size=cfg.sample_packing_group_size or defaults["sample_packing_group_size"],
        bin_size=cfg.sample_packing_bin_size or defaults["sample_packing_bin_size"],
        sequential=bool(cfg.sample_packing_sequentially),
        drop_last=True,
        num_processes=1,
    )
    rows = len(list(iter(sampler)))
    return {
        "status": "measured",
        "source": f"{folder} ({len(lengths)} samples after axolotl's preparation)",
        "sampler": f"{MultipackBatchSampler.__module__}.{MultipackBatchSampler.__name__}",
        "tokenizer": r.config["base_model"],
        "sequence_len": sequence_len,
        "micro_batch": micro_batch,
        "samples": int(len(lengths)),
        "tokens": int(lengths.sum()),
        "packed_rows": rows,
        "packed_real_share": sampler.efficiency(),
        "padded_real_share": padded_share(lengths, micro_batch),
        "ideal_rows": math.ceil(int(lengths.sum()) / (micro_batch * sequence_len)),
    }
