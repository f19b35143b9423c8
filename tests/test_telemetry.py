"""Every `make train` measures itself (launch/telemetry.py through launch/telemetry_plugin.py; the launcher's side
launch/telemetry_record.py): real tokens counted from the batches (padding excluded, packed samples apart),
tokens/s over the steps after the first few, peak memory (GPU allocated and reserved; on CPU the RSS of the
training process and its children), MFU on a GPU (an unknown GPU named, never dropped), and `make plan`'s
estimate for the same config beside them, in the manifest's train section and the training summary line."""

from __future__ import annotations

import json

import pytest
import torch

from core import manifest
from launch import telemetry_record as tr
from launch.telemetry import sample_lengths


def test_real_lengths_come_from_the_masks():
    padded = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]])
    packed = torch.tensor([[1, 1, 2, 2, 2, 3, 0, 0]])
    assert sample_lengths({"attention_mask": padded, "input_ids": padded}) == [3, 5]
    assert sample_lengths({"attention_mask": packed, "input_ids": packed}) == [2, 3, 1]
    assert sample_lengths({"position_ids": torch.tensor([[0, 1, 2, 0, 1, 0]])}) == [3, 2, 1]
    assert sample_lengths({"input_ids": torch.zeros(2, 7, dtype=torch.long)}) == [7, 7]


def record(device: str, seconds: float = 2.0) -> dict:
    model = {"matmul_frozen": 1000, "matmul_trained": 10, "layers": 2, "attention_width": 8}
    steps = [
        {"step": i + 1, "seconds": seconds, "tokens": 100, "slots": 128, "sq": 500, "samples": 3} for i in range(6)
    ]
    return {"device": device, "steps": steps, "tokens": 600, "slots": 768, "model": model}


def test_mfu_is_model_flops_over_the_gpus_peak():
    r = record("NVIDIA H100 80GB HBM3")
    t = tr.timed(r)
    assert t["timed_steps"] == 3 and t["timed_tokens"] == 300 and t["tokens_per_s"] == 300 / 6.0  # 3 warm steps
    assert tr.flops_per_token(r) == 4 * 1000 + 6 * 10  # the embedding lookup is no matmul: not in the weights
    assert t["attention_flops"] == 6 * 2 * 8 * 500 * 3  # 6 x layers x width x n(n+1), over the timed steps
    mfu, peak, note = tr.mfu(r, None)
    assert peak == 989 and "H100" in note
    assert mfu == pytest.approx((4060 * 300 + 6 * 2 * 8 * 1500) / 6.0 / 989e12)
    assert tr.gpu_peak("NVIDIA H200", None) == ("H200", 989.0) and tr.gpu_peak("NVIDIA L40S", None)[0] == "L40S"


def test_an_unknown_gpu_is_named_not_dropped():
    mfu, peak, note = tr.mfu(record("NVIDIA B300 SXM6"), None)
    assert mfu is None and peak is None
    assert "NVIDIA B300 SXM6" in note and "not in launch/preflight/gpus.yaml" in note
    t = tr.summarize(record("NVIDIA B300 SXM6"), None)
    assert t.mfu is None and "NVIDIA B300 SXM6" in t.mfu_note and t.tokens_per_s == 50.0


@pytest.mark.slow
def test_make_train_measures_itself(default_run):
    run, stdout = default_run
    t = manifest.read(run).train.telemetry
    assert t is not None and t.device == "cpu" and t.steps == 3 and t.timed_steps >= 1
    assert 0 < t.tokens <= t.slots and t.timed_tokens > 0 and t.tokens_per_s > 0
    raw = json.loads((run / t.file).read_text())  # counted per step from the batches, not estimated
    assert sum(s["tokens"] for s in raw["steps"]) == t.tokens and len(raw["steps"]) == 3
    assert t.peak_rss_gib > 0.1 and t.peak_gpu_allocated_gib is None
    assert t.mfu is None and t.mfu_note.startswith("CPU")
    assert t.matmul_trained > 0 and t.matmul_frozen > t.matmul_trained and t.flops_per_token > 0
    assert t.plan is not None and t.plan.total_gib > 1.0 and set(t.plan.parts_gib) >= {"weights", "activations"}
    line = next(x for x in stdout.splitlines() if x.startswith("measured: "))
    assert f"{t.tokens_per_s:.0f} tokens/s" in line and f"plan {t.plan.total_gib:.2f} GiB" in line
    assert f"{t.tokens_per_s:.0f} tok/s, RSS" in tr.cell(t)
