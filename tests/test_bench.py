"""One quick smoke of the `make bench` code path (tiny sizes): every section measured and reported.
Benchmarks are not tests: this checks the machinery, not the numbers."""

from __future__ import annotations

import json

import pytest

from bench import pipeline
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
        "## Cold commands as a user types them",
        "## The default pipeline as a user runs it",
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
    # the default pipeline, each stage the user's own make command, counted only once its work was checked
    stages = report["pipeline"]["stages"]
    assert list(stages) == ["train", "merge", "gguf", "eval"] and report["meta"]["repeats"] == 1
    assert all(v["command"].startswith(f"make {k}") and v["seconds"]["n"] == 1 for k, v in stages.items())
    assert stages["gguf"]["command"] == "make gguf QUANTS=Q8_0"  # quick mode's differences, stated
    assert stages["eval"]["command"] == "make eval LIMIT=2 MAX_NEW_TOKENS=8"
    assert set(report["pipeline"]["eval"]["rows"]) == {"gguf:f16", "gguf:Q8_0", "base"}  # the CPU default
    assert all(e.startswith("llama.cpp:") for e in report["pipeline"]["eval"]["rows"].values())
    assert set(report["cli"]["refusals"]) == set(pipeline.refusals(folder)) and report["cli"]["check"]["n"] == 1
    for target in ("default pipeline <= 3 min", "cold <= 5 s", "a bad-input refusal <= 2 s"):
        assert target in text, target
    for stage in ("make train", "make merge", "make gguf QUANTS=Q8_0", "make eval LIMIT=2 MAX_NEW_TOKENS=8"):
        assert f"| `{stage}" in text, stage
    assert report["judge"]["concurrency_1"]["median"] > 0
    assert report["gpu"]["status"].startswith("not measured by make bench") and "make gpu-check" in text
    # both sides' tokens counted from the batches by the same probe (launch/telemetry.py), none estimated
    assert o["tokens_per_s"]["median"] > 0 and b["tokens_per_s"]["median"] > 0
    assert o["tokens_method"] == b["tokens_method"] and "counted from the batches" in o["tokens_method"]
    assert (folder / "bench.png").read_bytes()[:4] == b"\x89PNG"
