"""The bad-input corpus (tests/bad_inputs.yaml), one parametrized test: every case runs its real CLI and must exit
non-zero with an error that says what is wrong and names the file, line or field, print no traceback, and leave
every file that existed before it (its inputs, the run directory, other outputs) byte-identical.

How a case runs: the first case of each CLI (that is not marked `heavy: true`) in a fresh process that must not
import torch, transformers, axolotl, datasets, peft, lm-eval or llama.cpp before refusing (`python -m`, as the
Makefile runs it); cases that talk to a local Hub or RunPod server in a fresh process too (huggingface_hub and the
runpod SDK read their endpoints at import); every other case through the CLI's `main(argv)` in this process
(tests/cli_inprocess.py). `heavy: true` marks a refusal that needs a heavy check (a model's module tree, a
tokenizer, axolotl's schema) and may import what that check needs."""

from __future__ import annotations

import hashlib
import json
import shutil
from contextlib import ExitStack
from pathlib import Path

import pytest
import yaml

from core import atomic
from core import manifest as run_manifest
from core.paths import REPO
from core.rundir import LATEST
from tests.cli_inprocess import run_cold, run_main
from tests.conftest import run_cli

CORPUS = Path(__file__).with_name("bad_inputs.yaml")
CASES = yaml.safe_load(CORPUS.read_text())
RECIPE = "smollm2-135m-cpu"
STAMP = "20260101T000000Z"


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def make_run(outputs: Path, kind: str, default_run=None) -> Path:
    """A run directory in the state the case needs (no training: only what the CLI reads first)."""
    run = outputs / "runs" / RECIPE / STAMP
    if kind == "trained":  # a real run's manifest, config and final adapter
        src, _ = default_run
        run.mkdir(parents=True)
        for name in (run_manifest.MANIFEST, "config.yaml"):
            shutil.copy2(src / name, run / name)
        final = run_manifest.read(src).train.final_checkpoint.path
        (run / final).mkdir(parents=True, exist_ok=True)
        for f in (src / final).iterdir():
            if f.is_file():
                shutil.copy2(f, run / final / f.name)
        return run
    (run / "output").mkdir(parents=True)
    adapter = run / "output" / "adapter_model.safetensors"
    adapter.write_bytes(b"adapter bytes")
    manifest = {
        "recipe": {"name": RECIPE, "sha256": "0" * 64},
        "meta": {"eval_suite": "brie"},
        "status": "completed",
        "final_checkpoint": {"path": "output", "file": adapter.name, "sha256": _sha(b"adapter bytes")},
    }
    if kind == "changed-adapter":
        adapter.write_bytes(b"adapter bytes, edited later")
    elif kind == "unfinished":
        manifest["status"] = "running"
        del manifest["final_checkpoint"]
        (run / "output" / "checkpoint-2").mkdir()  # cut short: no trainer_state.json
        (run / "output" / "checkpoint-2" / "adapter_model.safetensors").write_bytes(b"half")
    elif kind == "half-merged":
        (run / "merged").mkdir()
        (run / "merged" / "config.json").write_text("{}")
        manifest["merge"] = {"path": "merged", "files": {"model.safetensors": _sha(b"weights")}}
    elif kind == "merged-gone":  # make merge ran, its folder was deleted since
        manifest["merge"] = {"path": "merged", "files": {"model.safetensors": _sha(b"weights")}}
    atomic.write_json(run / run_manifest.MANIFEST, manifest)  # schema 1, as written before the typed manifest
    if kind == "truncated-manifest":
        text = (run / run_manifest.MANIFEST).read_text()
        (run / run_manifest.MANIFEST).write_text(text[: len(text) // 2])
    if kind == "dangling-latest":
        (run.parent / LATEST).write_text("20250101T000000Z\n")
    return run


def snapshot(*roots: Path) -> dict[Path, str]:
    return {p: _sha(p.read_bytes()) for root in roots if root.exists() for p in root.rglob("*") if p.is_file()}


def fill(value: str, tmp: Path, run: Path | None) -> str:
    return value.replace("{tmp}", str(tmp)).replace("{repo}", str(REPO)).replace("{run}", str(run))


def _cold_ids() -> set[str]:
    first: dict[str, str] = {}
    for case in CASES:
        if not case.get("heavy") and not case.get("server"):
            first.setdefault(case["cmd"][0], case["id"])
    return set(first.values())


COLD_IDS = _cold_ids()


def how(case) -> str:
    if case["id"] in COLD_IDS:
        return "cold"
    if case.get("server") or case["cmd"][0] == "launch.cloud.commands":
        return "process"
    return "in-process"


def params():
    for case in CASES:
        slow = case.get("run") == "trained"  # needs the default recipe's trained run
        yield pytest.param(case, id=case["id"], marks=[pytest.mark.slow] if slow else [])


def test_corpus_has_enough_cases_across_areas():
    ids = [c["id"] for c in CASES]
    assert len(ids) == len(set(ids)) >= 30
    areas = {"recipe", "data", "plan", "train", "judge", "judged", "push", "runpod", "manifest", "merged", "resume"}
    areas |= {"prefs", "study", "chat", "serve", "ollama"}
    assert areas <= {i.split("-")[0] for i in ids}


def test_every_cli_of_the_corpus_has_a_cold_case():
    """Each CLI refuses at least one bad input in a fresh process before any heavy import."""
    cold = {c["cmd"][0] for c in CASES if c["id"] in COLD_IDS}
    assert cold == {c["cmd"][0] for c in CASES}


@pytest.mark.parametrize("case", params())
def test_bad_input(case, tmp_path, request, monkeypatch, capfd):
    from tests.hub_server import LocalHub
    from tests.runpod_server import RunPodServer

    outputs = tmp_path / "outputs"
    outputs.mkdir()
    default_run = request.getfixturevalue("default_run") if case.get("run") == "trained" else None
    run = make_run(outputs, case["run"], default_run) if case.get("run") else None
    for name, text in (case.get("files") or {}).items():
        (tmp_path / name).write_text(fill(text, tmp_path, run))
    env = {
        "OUTPUTS": str(outputs),
        "RECIPE": "",
        "HF_HOME": str(tmp_path / "hf"),
        **{k: fill(str(v), tmp_path, run) for k, v in (case.get("env") or {}).items()},
    }
    before = snapshot(tmp_path)
    with ExitStack() as stack:
        server = case.get("server") or {}
        if "hub" in server:
            hub = stack.enter_context(LocalHub())
            hub.state.fail_next = list(server["hub"])
            env.update(HF_ENDPOINT=hub.endpoint, HF_HUB_DISABLE_XET="1", HF_HUB_OFFLINE="0")
        if "runpod" in server or case["cmd"][0] == "launch.cloud.commands":
            rp = stack.enter_context(RunPodServer())
            rp.state.fail_next = list(server.get("runpod") or [])
            env = {
                "RUNPOD_API_KEY": "rp-fake-key-for-tests-only-0000",
                **env,
                "RUNPOD_API_BASE_URL": rp.url,
                "RUNPOD_BACKOFF_S": "0",
            }
        argv = [fill(a, tmp_path, run) for a in case["cmd"][1:]]
        mode = how(case)
        if mode == "cold":
            imports = tmp_path.parent / f"{tmp_path.name}.imports.json"
            proc = run_cold(case["cmd"][0], argv, env, imports)
            assert json.loads(imports.read_text()) == [], f"imported before refusing: {imports.read_text()}"
        elif mode == "process":
            proc = run_cli(case["cmd"][0], *argv, env=env, timeout=300)
        else:
            proc = run_main(case["cmd"][0], argv, env, monkeypatch, capfd)
    said = proc.stdout + proc.stderr
    assert proc.returncode != 0, said[-2000:]
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    assert case["expect"] in said, said[-2000:]
    for name in case["names"]:
        assert fill(name, tmp_path, run) in said, (name, said[-2000:])
    after = snapshot(tmp_path)
    changed = [str(p) for p, sha in before.items() if after.get(p) != sha]
    assert not changed, f"lost or changed: {changed}"
    assert "rp-fake-key-for-tests-only-0000" not in said and "hf_fake-token-for-tests-only" not in said
