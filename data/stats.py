"""Dataset statistics with the recipe's own tokenizer and template (axolotl's prompt strategy):
token lengths, what exceeds sequence_len, the share of tokens actually trained (assistant turns),
padding waste without packing vs axolotl's own packing (its multipack sampler), and counts per persona/source/type."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from data.kinds import kind_of
from data.sources import Row, local_rows
from data.tokens import strategy_for

GROUP_FIELDS = ("persona", "source", "type")
GROUP_SIZE, BIN_SIZE = 100_000, 200  # axolotl's sample_packing_group_size and sample_packing_bin_size defaults


def tokenize_rows(config: dict, ds: dict, rows: Iterable[Row]) -> list[dict[str, Any]]:
    """[{line, tokens, trained, record}] for every valid row of a dataset entry (its type's validator,
    data/kinds.py), as axolotl tokenizes it."""
    _, strategy = strategy_for(config, ds)
    kind = kind_of(ds, rl=config.get("rl"))
    out = []
    for row in rows:
        if row.error is None and (kind.check is None or kind.check(row.record) is None):
            tok = strategy.tokenize_prompt(row.record)
            labels = tok.get("labels", tok["input_ids"])
            out.append(
                {
                    "line": row.line,
                    "tokens": len(tok["input_ids"]),
                    "trained": sum(1 for x in labels if x != -100),
                    "record": row.record,
                }
            )
    return out


def tokenize_records(config: dict, ds: dict, path: Path, fmt: str | None = None, **fields: str) -> list[dict[str, Any]]:
    """tokenize_rows for a local file of the entry (fmt and fields: kept for callers that name the format)."""
    return tokenize_rows(config, {**ds, "path": str(path)}, local_rows(Path(path)))


def padding_efficiency(lengths: list[int], batch: int) -> float:
    """Real tokens / tokens processed, batches in dataset order padded to their longest (no packing)."""
    if not lengths:
        return 0.0
    padded = sum(max(lengths[i : i + batch]) * len(lengths[i : i + batch]) for i in range(0, len(lengths), batch))
    return sum(lengths) / padded


def packing_efficiency(
    lengths: list[int], capacity: int, group_size: int = GROUP_SIZE, bin_size: int = BIN_SIZE
) -> tuple[float, int]:
    """Packed as axolotl's multipack sampler packs them (axolotl.utils.samplers.multipack.pack_parallel, in one
    process): (real tokens / row tokens, rows)."""
    if not lengths:
        return 0.0, 0
    from axolotl.utils.samplers.multipack import pack_parallel

    rows = pack_parallel(np.asarray(lengths, dtype=np.int64), capacity, group_size, bin_size, num_processes=1)
    return sum(lengths) / (len(rows) * capacity), len(rows)


def summarize(
    items: list[dict[str, Any]], sequence_len: int, micro_batch: int, truncate: bool = False
) -> dict[str, Any]:
    lengths = [it["tokens"] for it in items]
    over = [it for it in items if it["tokens"] > sequence_len]
    kept = (
        [min(it["tokens"], sequence_len) for it in items]
        if truncate
        else [it["tokens"] for it in items if it["tokens"] <= sequence_len]
    )
    kept_items = items if truncate else [it for it in items if it["tokens"] <= sequence_len]
    pack, rows = packing_efficiency(kept, sequence_len)
    groups = {f: dict(Counter(str(it["record"][f]) for it in items if f in it["record"])) for f in GROUP_FIELDS}
    arr = np.array(lengths) if lengths else np.array([0])
    return {
        "records": len(items),
        "tokens": {
            "min": int(arr.min()),
            "median": float(np.median(arr)),
            "p95": float(np.percentile(arr, 95)),
            "max": int(arr.max()),
            "total": int(arr.sum()),
        },
        "sequence_len": sequence_len,
        "over_sequence_len": {
            "count": len(over),
            "lines": [it["line"] for it in over],
            "action": "truncated" if truncate else "dropped (axolotl's default)",
        },
        "trained_token_share": sum(it["trained"] for it in kept_items) / max(sum(it["tokens"] for it in kept_items), 1),
        "padding_efficiency": {"micro_batch": micro_batch, "real_token_share": padding_efficiency(kept, micro_batch)},
        "packing_efficiency": {"rows": rows, "real_token_share": pack},
        "groups": {k: v for k, v in groups.items() if v},
    }


def histogram(lengths: list[int], sequence_len: int, title: str, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 3.5))
    ax.hist(lengths, bins=min(40, max(5, len(lengths) // 2)), color="#6a8caf")
    ax.axvline(sequence_len, color="#b04040", linestyle="--", label=f"sequence_len {sequence_len}")
    ax.set_xlabel("tokens per record (recipe's tokenizer and template)")
    ax.set_ylabel("records")
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
