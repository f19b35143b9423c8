"""Preflight: how many records exceed sequence_len (axolotl drops them), with the recipe's own tokenizer."""

from __future__ import annotations

from data.entries import dataset_entries, dataset_file, dataset_format
from launch.preflight.findings import Finding
from launch.recipe.resolve import Resolved


def check_lengths(r: Resolved) -> list[Finding]:
    source = r.tokenizer_source()
    if not source:
        return [
            Finding(
                "warning",
                "sequence length",
                "the tokenizer is not cached here; lengths not measured offline",
                hint="run make check once the model is in the HF cache (hf download <model>)",
            )
        ]
    from data.stats import tokenize_records
    from launch.recipe.architecture import tokenizer_config

    config = tokenizer_config(r.config, source)
    seq = int(r.config.get("sequence_len") or 2048)
    out = []
    for _, _, ds in dataset_entries(r.config):
        path = dataset_file(ds)
        if not path.is_file():
            continue
        fmt, fields = dataset_format(ds)
        if fmt == "other":
            continue
        lengths = [it["tokens"] for it in tokenize_records(config, ds, path, fmt, **fields)]
        if not lengths:
            continue
        over = sum(n > seq for n in lengths)
        msg = f"{path.name}: max {max(lengths)} tokens, {over} of {len(lengths)} over sequence_len {seq}"
        level = "warning" if over else "ok"
        out.append(
            Finding(
                level,
                "sequence length",
                msg + (" (axolotl drops them)" if over else ""),
                r.recipe.where("sequence_len") if over else None,
            )
        )
    return out
