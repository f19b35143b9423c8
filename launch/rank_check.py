"""Did every rank end with the same trained weights, and is that what was saved?

An axolotl plugin (launch/rank_plugin.py, added by the launcher to multi-process runs) writes, at the end of training, one small
JSON per rank into <output_dir>/ranks/: a sha256 over the rank's trainable tensors, gathered in full under
ZeRO-3, plus each tensor's norm. After training, `verify` checks that all local ranks agree bit for bit
and that the saved adapter matches their norms. A ZeRO-3 run that saved an empty or stale adapter, or ranks
that silently trained apart (DDP without a process group), fail here instead of exiting 0.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from core.errors import UserError, Where

RANKS_DIR = "ranks"
NORM_RTOL = 1e-2  # the saved adapter may be a 16-bit copy of fp32 training weights


def normalize(name: str) -> str:
    """A trainable parameter's name as peft saves it (no wrapper prefix, no adapter name)."""
    while name.startswith("module."):
        name = name[len("module.") :]
    return name.replace(".default.", ".")


def fingerprint(named: list[tuple[str, Any]]) -> dict[str, Any]:
    import torch

    digest = hashlib.sha256()
    norms = {}
    for name, tensor in sorted(named, key=lambda kv: kv[0]):
        data = tensor.detach().to("cpu", torch.float32).contiguous()
        digest.update(name.encode() + b"\0" + data.numpy().tobytes())
        norms[name] = float(data.norm())
    return {"sha256": digest.hexdigest(), "tensors": len(norms), "norms": norms}


def verify(output_dir: Path, expected_ranks: list[int], adapter: Path | None) -> dict[str, Any]:
    """Check the rank files; return what the manifest records. Raises UserError on disagreement."""
    folder = output_dir / RANKS_DIR
    records = {}
    for rank in expected_ranks:
        path = folder / f"rank{rank}.json"
        if not path.is_file():
            raise UserError(
                f"rank {rank} wrote no weight fingerprint: it did not reach the end of training",
                Where(folder),
                "see logs/train.log for that rank's error",
            )
        records[rank] = json.loads(path.read_text())
    digests = {r: rec["sha256"] for r, rec in records.items()}
    if len(set(digests.values())) != 1:
        raise UserError(
            "the ranks ended with different weights: " + ", ".join(f"rank {r}: {d[:12]}" for r, d in digests.items()),
            Where(folder),
            "the processes trained apart (no shared process group); the run cannot be trusted",
        )
    first = records[expected_ranks[0]]
    result = {"ranks": expected_ranks, "identical": True, "sha256": first["sha256"], "tensors": first["tensors"]}
    if adapter is not None and adapter.name == "adapter_model.safetensors":
        from safetensors import safe_open

        with safe_open(adapter, "pt") as fh:
            saved = {k: float(fh.get_tensor(k).float().norm()) for k in fh.keys()}  # noqa: SIM118 - a safetensors handle, not a dict
        missing = sorted(set(first["norms"]) - set(saved))
        if missing:
            raise UserError(
                f"the saved adapter lacks {len(missing)} trained tensors, e.g. {missing[0]}",
                Where(adapter),
                "a ZeRO-3 run needs stage3_gather_16bit_weights_on_model_save: true",
            )
        off = [k for k, n in first["norms"].items() if abs(saved[k] - n) > NORM_RTOL * max(abs(n), 1e-8)]
        if off:
            raise UserError(
                f"the saved adapter differs from the trained weights in {len(off)} tensors, "
                f"e.g. {off[0]} (norm {saved[off[0]]:.4g} saved vs {first['norms'][off[0]]:.4g} trained)",
                Where(adapter),
                "the save did not gather the sharded weights",
            )
        result["saved_adapter_matches"] = True
    return result
