"""One quick smoke of the `make bench` code path (tiny sizes): every section measured and reported.
Benchmarks are not tests: this checks the machinery, not the numbers."""

from __future__ import annotations

import json

import pytest

from bench import run as bench_run
from bench.measure import spread


def test_spread_and_combine():
    assert spread([3.0, 1.0, 2.0]) == {"min": 1.0, "median": 2.0, "max": 3.0, "n": 3, "values": [3.0, 1.0, 2.0]}
    combined = bench_run.combine([{"a": {"x": 1.0, "m": "s"}}, {"a": {"x": 3.0, "m": "s"}}])
    assert combined["a"]["x"]["median"] == 2.0 and combined["a"]["m"] == "s"


@pytest.mark.slow
def test_bench_quick_smoke(outputs):
    assert bench_run.main(["--quick"]) == 0
    [folder] = list((outputs / "bench").iterdir())
    text = (folder / "report.md").read_text()
    for section in (
        "## Targets",
        "## Training: default recipe vs the seed-style baseline",
        "## Padding vs packing",
        "## Preflight",
        "## Pipeline stages",
        "## Judge harness throughput",
        "## GPU",
        "QUICK mode",
    ):
        assert section in text, section
    report = json.loads((folder / "report.json").read_text())
    o, b = report["training"]["ours"], report["training"]["baseline"]
    assert o["s_per_step"]["median"] > 0 and b["s_per_step"]["median"] > 0
    assert o["peak_rss_gb"]["median"] > 0.1 and b["peak_rss_gb"]["median"] > 0.1
    packing = report["packing"]
    if str(packing.get("status", "")).startswith("not measured"):  # a clone without ../shared/brie
        print(f"packing: {packing['status']}")
    else:
        assert 0 < packing["padded_real_share"] < packing["packed_real_share"] <= 1
    assert set(report["pipeline"]["stages"]) == {"merge_s", "gguf_convert_s", "gguf_quantize_s", "eval_s"}
    assert report["pipeline"]["stages"]["merge_s"]["n"] == 1 and report["meta"]["repeats"] == 1
    assert report["judge"]["concurrency_1"]["median"] > 0
    assert report["gpu"]["status"].startswith("not measured by make bench") and "make gpu-check" in text
    # both sides' tokens counted from the batches by the same probe (launch/telemetry.py), none estimated
    assert o["tokens_per_s"]["median"] > 0 and b["tokens_per_s"]["median"] > 0
    assert o["tokens_method"] == b["tokens_method"] and "counted from the batches" in o["tokens_method"]
    assert (folder / "bench.png").read_bytes()[:4] == b"\x89PNG"
