"""`make bench` times the default pipeline through the user's own make commands (bench/pipeline.py; issue 20 item 7,
issue 23 item 14): a stage counts only once its work is checked (exit status, the lines it prints, the files and
manifest section it writes), and the report names each stage's command and the targets. No timed assertion: the
numbers are reported, the structure is asserted. The runs are the session's shared ones (tests/shared_runs.py)."""

from __future__ import annotations

import pytest

from bench import pipeline
from bench import run as bench_run
from core import manifest, rundir
from tests.shared_runs import cache_copy, copy_run


def said(stdout: str, returncode: int = 0, command: str = "make x") -> dict:
    """What bench.pipeline.make returns, for a command whose output is `stdout`."""
    return {"stdout": stdout, "returncode": returncode, "command": command, "seconds": 1.0, "lines": []}


@pytest.mark.slow  # the session's default run, merged and converted (tests/conftest.py)
def test_a_stage_that_did_not_do_its_work_is_no_time(default_built, tmp_path):
    run = copy_run(default_built[0], tmp_path / "outputs")
    merge_out, gguf_out = default_built[1]["merge"], default_built[1]["gguf"]
    assert pipeline.checked("merge", said(merge_out), run) == {}
    facts = pipeline.checked("gguf", said(gguf_out), run)
    assert set(facts["mb"]) == {"f16", "Q8_0", "Q4_K_M"} and facts["outtype"] == "f16"
    with pytest.raises(pipeline.NotDone, match="a failed exit status"):
        pipeline.checked("gguf", said(gguf_out, returncode=2), run)
    with pytest.raises(pipeline.NotDone, match="no GGUF whose parity passed"):  # it never printed its verdict
        pipeline.checked("gguf", said(gguf_out.replace("parity: pass", "")), run)
    with pytest.raises(pipeline.NotDone, match="no scored row"):  # make eval exited 0 having scored nothing
        pipeline.checked("eval", said("backends: gguf,base"), run)
    m = manifest.read(run)
    (run / m.gguf.path / m.gguf.files["Q8_0"].file).unlink()
    with pytest.raises(pipeline.NotDone, match="GGUF file named in the manifest is missing"):
        pipeline.checked("gguf", said(gguf_out), run)
    (run / m.merge.path / next(iter(m.merge.files))).unlink()
    with pytest.raises(pipeline.NotDone, match="no merged model"):
        pipeline.checked("merge", said(merge_out), run)
    with pytest.raises(pipeline.NotDone, match="no run directory"):  # no LATEST completed run in these OUTPUTS
        pipeline.checked_train(said(""), tmp_path / "outputs")
    rundir.mark_latest(run)
    manifest.write_sections(run, train=m.train.model_copy(update={"status": "failed"}))
    with pytest.raises(pipeline.NotDone, match="status is failed"):
        pipeline.checked_train(said(""), tmp_path / "outputs")


def test_gguf_phases_come_from_make_ggufs_own_lines():
    lines = [
        (1.0, "converting /x/merged -> run-f16.gguf"),
        (9.0, "quantizing -> run-Q8_0.gguf"),
        (12.0, "quantizing -> run-Q4_K_M.gguf"),
        (16.0, "parity: HF merged model vs each GGUF, greedy"),
    ]
    assert pipeline.gguf_phases(lines) == {"convert": 8.0, "Q8_0": 3.0, "Q4_K_M": 4.0}


@pytest.mark.slow  # make merge, make gguf and make eval of the session's default run, as a user types them
def test_the_pipeline_report_names_each_stage_its_command_and_the_eval_backend(
    default_run, base_f16, tmp_path, monkeypatch
):
    outputs = tmp_path / "outputs"
    run = copy_run(default_run[0], outputs)
    rundir.mark_latest(run)  # what the session's `make train` left in its own OUTPUTS
    monkeypatch.setenv("AFFINAGE_CACHE", str(cache_copy(base_f16, tmp_path / "cache")))
    train = {**said(default_run[1], command="make train ARGS=..."), "seconds": 60.0}  # timed by the session
    p = pipeline.pipeline(True, outputs, train, log=lambda *_: None)
    assert list(p["stages"]) == ["train", "merge", "gguf", "eval"]
    commands = [v["command"] for v in p["stages"].values()]
    assert commands[1:] == ["make merge", "make gguf QUANTS=Q8_0", "make eval LIMIT=2 MAX_NEW_TOKENS=8"]
    assert all(v["seconds"] > 0 for v in p["stages"].values())
    print({k: round(v["seconds"], 1) for k, v in p["stages"].items()})  # reported, never asserted
    # make eval's CPU default: the parity-checked GGUFs and the base model's cached f16 GGUF, not converted again
    m = manifest.read(run)
    assert p["eval"]["rows"] == {
        "gguf:f16": f"llama.cpp:{m.gguf.files['f16'].file}",
        "gguf:Q8_0": f"llama.cpp:{m.gguf.files['Q8_0'].file}",
        "base": f"llama.cpp:{m.lm_eval.base_gguf['path'].rsplit('/', 1)[1]}",
    }
    assert p["eval"]["choice"].startswith("default on a CPU") and p["eval"]["base_gguf_built"] is False
    assert set(p["gguf"]["phases_s"]) == {"convert", "Q8_0"}
    combined = {**bench_run.combine([p]), "base_gguf_built": [False]}
    text = "\n".join(bench_run.pipeline_lines(combined, quick=True))
    assert "## The default pipeline as a user runs it" in text and "Total (medians)" in text
    for stage, command in zip(p["stages"], commands, strict=True):
        assert f"| {stage} | `{command}` |" in text
    assert "gguf with QUANTS=Q8_0; eval with LIMIT=2 MAX_NEW_TOKENS=8" in text  # quick mode's differences, stated
    assert "make eval (default on a CPU" in text and "base (llama.cpp:" in text
