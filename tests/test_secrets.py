"""No credential leaks: with fake HF, RunPod, OpenAI, Anthropic, Gemini and W&B keys in the environment, run the
steps after training on a copy of the default run (merged and converted: push to the Hub, lm-eval, the judge) and
the RunPod commands, then scan every file they wrote (run directory, logs, manifests, model cards, generation and
judge caches, pod records, the Hub's received files, anything new in the checkout or the model cache) and all
captured output for any of the keys. The pipeline a pod runs with the keys in its environment (train, merge,
GGUF, push, stop the pod) is scanned the same way by tests/test_pod_start.py, with this file's scanner."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from core import manifest, settings
from core.paths import REPO
from tests.conftest import run_cli
from tests.hub_server import LocalHub
from tests.openai_server import OpenAIServer
from tests.runpod_server import RunPodServer
from tests.shared_runs import copy_run

FAKE = {
    "HF_TOKEN": "hf_fake-token-for-tests-only-0123-4567",
    "RUNPOD_API_KEY": "rp-fake-key-for-tests-only-0000",
    "OPENAI_API_KEY": "sk-fake-openai-key-for-tests-only",
    "ANTHROPIC_API_KEY": "sk-ant-fake-key-for-tests-only",
    "GEMINI_API_KEY": "gemini-fake-key-for-tests-only",
    "WANDB_API_KEY": "wandb-fake-key-for-tests-only",
}


def leaks(paths, texts) -> list[str]:
    found = []
    needles = {name: value.encode() for name, value in FAKE.items()}
    for path in paths:
        data = path.read_bytes()
        found += [f"{name} in {path}" for name, needle in needles.items() if needle in data]
    for label, text in texts.items():
        found += [f"{name} in {label}" for name, value in FAKE.items() if value in text]
    return found


def files_under(*roots: Path, since: float | None = None) -> list[Path]:
    out = []
    for root in roots:
        for p in root.rglob("*") if root.exists() else []:
            # the checkout's own tests hold the fake keys by design (and their bytecode caches)
            if (
                {".venv", ".git", "__pycache__", ".pytest_cache"} & set(p.parts)
                or not p.is_file()
                or p.parent.name == "tests"
            ):
                continue
            if since is None or p.stat().st_mtime >= since:
                out.append(p)
    return out


def test_the_scanner_finds_a_planted_key(tmp_path):
    (tmp_path / "events.out.tfevents.1").write_bytes(b"\x00\x01" + FAKE["RUNPOD_API_KEY"].encode() + b"\x02")
    assert leaks(files_under(tmp_path), {"stdout": "ok " + FAKE["OPENAI_API_KEY"]}) == [
        f"RUNPOD_API_KEY in {tmp_path / 'events.out.tfevents.1'}",
        "OPENAI_API_KEY in stdout",
    ]


@pytest.mark.slow
def test_no_key_in_any_file_or_output(default_built, tmp_path):
    start = time.time() - 1
    volume = tmp_path / "volume"
    run_dir = copy_run(default_built[0], volume)
    base = {
        **FAKE,
        "OUTPUTS": str(volume),
        "HF_HOME": str(tmp_path / "hf"),
        "RUNPOD_BACKOFF_S": "0",
        "RUN": str(run_dir),
    }
    outputs: dict[str, str] = {}

    def run(label: str, module: str, *args: str, **env) -> None:
        proc = run_cli(module, *args, env={**base, **env}, timeout=1500)
        outputs[f"{label} stdout"], outputs[f"{label} stderr"] = proc.stdout, proc.stderr
        assert proc.returncode == 0, f"{label}: " + proc.stdout[-3000:] + proc.stderr[-3000:]

    with RunPodServer() as rp, LocalHub() as hub, OpenAIServer() as judge:
        base.update(
            RUNPOD_API_BASE_URL=rp.url,
            HF_ENDPOINT=hub.endpoint,
            HF_HUB_DISABLE_XET="1",
            HF_HUB_OFFLINE="0",
            OPENAI_BASE_URL=judge.url,
        )
        run("push", "tools.export.push", "--repo=me/secret-scan")
        run("lm-eval", "eval.lmeval", "--backends=hf,gguf", "--limit=2", "--max-gen-toks=8")
        run("judge", "eval.judge", "--judges=gpt-4o", "--limit=2", "--max-new-tokens=8")
        run(
            "runpod up",
            "launch.cloud.commands",
            "up",
            RECIPE="llama31-8b-instruct",
            GPU="H100",
            PUSH_REPO="me/x",
            RUN="",
        )
        run("runpod status", "launch.cloud.commands", "status", RUN="")
        run("runpod down", "launch.cloud.commands", "down", FORCE="1", RUN="")
        sent = [r["query"] for r in rp.state.requests]
        received = [b for repo in hub.state.repos.values() for b in repo["files"].values()]
        judge_auth = list(judge.auth)

    m = manifest.read(run_dir)
    assert None not in (m.push, m.gguf, m.merge, m.lm_eval, m.judge) and m.judge.judges["gpt-4o"]["n"] == 2
    assert all(a == f"Bearer {FAKE['OPENAI_API_KEY']}" for a in judge_auth)  # the key was really in use
    assert set(hub.state.repos) == {"me/secret-scan", "me/secret-scan-merged", "me/secret-scan-GGUF"}
    written = files_under(tmp_path, since=start) + files_under(REPO, settings.load().cache, since=start)
    names = {p.name for p in written}
    assert {"manifest.json", "gpt-4o.jsonl", "report.md", "generations.jsonl"} <= names
    assert len(written) > 10
    texts = {**outputs, **{f"runpod request {i}": q for i, q in enumerate(sent)}}
    hub_files = tmp_path / "hub-received"
    hub_files.mkdir()
    for i, data in enumerate(received):
        (hub_files / f"file{i}").write_bytes(data)
    assert leaks(written + files_under(hub_files), texts) == []
