"""`make push` through the real huggingface_hub client, pointed (HF_ENDPOINT) at a local HTTP server on
127.0.0.1: repos, private flag, files, model cards, no token anywhere, idempotent re-runs, clear errors."""

from __future__ import annotations

import pytest
import yaml

from core import manifest, rundir
from core.manifest import EvalResult, LmEvalSection
from tests.conftest import run_cli
from tests.hub_server import LocalHub
from tests.shared_runs import copy_run

TOKEN = "hf_fake-token-for-tests-only-0123-4567"  # not token-shaped: no secret scanner should fire on it


def push_env(hub, home) -> dict:
    return {
        "HF_ENDPOINT": hub.endpoint,
        "HF_TOKEN": TOKEN,
        "HF_HUB_DISABLE_XET": "1",
        "HF_HOME": str(home),
        "HF_HUB_OFFLINE": "0",
    }


def card(files: dict) -> tuple[dict, str]:
    text = files["README.md"].decode()
    _, fm, body = text.split("---", 2)
    return yaml.safe_load(fm), body


@pytest.fixture
def built_run(default_built, tmp_path):
    run = copy_run(default_built[0], tmp_path / "outputs")  # a push writes its section into the run
    # the evaluation step's manifest section (its contract), so the card's model-index can be checked
    result = EvalResult(task="persona_holdout", backend="hf", metrics={"rouge1": 0.345, "bleu": 0.135})
    manifest.write_sections(run, lm_eval=LmEvalSection(results=[result]))
    return run


@pytest.mark.slow
def test_push_adapter_merged_and_gguf(built_run, tmp_path):
    run = built_run
    with LocalHub() as hub:
        proc = run_cli("tools.export.push", "--run", str(run), "--repo", "me/brie", env=push_env(hub, tmp_path))
        assert proc.returncode == 0, proc.stdout + proc.stderr
        repos = hub.state.repos
        assert set(repos) == {"me/brie", "me/brie-merged", "me/brie-GGUF"}
        assert all(r["private"] for r in repos.values())
        # huggingface_hub 1.x reads its public agent-harness registry (at most once a day) without a token
        anonymous = ("/_lfs", "/api/agent-harnesses")
        unsigned = [
            r for r in hub.state.requests if not r["path"].startswith(anonymous) and r["auth"] != f"Bearer {TOKEN}"
        ]
        assert not unsigned, [(r["method"], r["path"], r["auth"]) for r in unsigned]

        adapter = repos["me/brie"]["files"]
        local = rundir.final_adapter(run)
        assert adapter["adapter_model.safetensors"] == (local / "adapter_model.safetensors").read_bytes()
        assert "adapter_config.json" in adapter and "chat_template.jinja" in adapter
        fm, body = card(adapter)
        assert fm["base_model"] == "HuggingFaceTB/SmolLM2-135M-Instruct" and fm["license"] == "apache-2.0"
        assert fm["library_name"] == "peft" and fm["pipeline_tag"] == "text-generation" and "lora" in fm["tags"]
        assert fm["datasets"] == ["data/samples/philosophy_chat.train.jsonl", "data/samples/philosophy_chat.val.jsonl"]
        entries = fm["model-index"][0]["results"][0]["metrics"]
        assert {m["type"]: m["value"] for m in entries} == {"rouge1": 0.345, "bleu": 0.135}  # BLEU is 0-1
        assert {m["type"]: m["name"] for m in entries} == {"rouge1": "ROUGE-1", "bleu": "BLEU (0-1)"}
        assert "temperature=0.75" in body and manifest.read(run).train.datasets[0].sha256 in body

        merged = repos["me/brie-merged"]["files"]
        assert "model.safetensors" in merged and card(merged)[0]["library_name"] == "transformers"
        gguf_files = repos["me/brie-GGUF"]["files"]
        assert any(name.endswith("-Q4_K_M.gguf") for name in gguf_files) and "parity.json" in gguf_files
        assert "llama-cli -hf me/brie-GGUF:Q4_K_M" in card(gguf_files)[1]

        every_byte = b"".join(b for r in repos.values() for b in r["files"].values())
        assert TOKEN.encode() not in every_byte
        assert TOKEN not in proc.stdout + proc.stderr
        assert not any(TOKEN.encode() in p.read_bytes() for p in run.rglob("*") if p.is_file())
        assert manifest.read(run).push.repos["gguf"].repo_id == "me/brie-GGUF"

        commits = {k: r["commits"] for k, r in repos.items()}
        again = run_cli("tools.export.push", "--run", str(run), "--repo", "me/brie", env=push_env(hub, tmp_path))
        assert again.returncode == 0, again.stderr
        assert {k: set(r["files"]) for k, r in repos.items()} == {
            k: set(r["files"]) for k, r in hub.state.repos.items()
        }
        assert all(hub.state.repos[k]["commits"] == commits[k] + 1 for k in commits)


@pytest.mark.slow
def test_push_without_a_token_sends_nothing(default_run, tmp_path):
    run, _ = default_run
    with LocalHub() as hub:
        env = {**push_env(hub, tmp_path), "HF_TOKEN": ""}
        proc = run_cli("tools.export.push", "--run", str(run), "--repo", "me/brie", env=env)
        assert proc.returncode == 2 and "no Hugging Face token" in proc.stderr and "Traceback" not in proc.stderr
        assert hub.state.requests == []


@pytest.mark.slow
def test_hub_server_errors_end_in_a_clear_message(default_run, tmp_path):
    run, _ = default_run
    before = manifest.read(run).push
    with LocalHub() as hub:
        hub.state.fail_next = [500] * 50
        proc = run_cli("tools.export.push", "--run", str(run), "--repo", "me/other", env=push_env(hub, tmp_path))
        assert proc.returncode == 2 and "failed after 3 tries" in proc.stderr and "Traceback" not in proc.stderr
    assert manifest.read(run).push == before


@pytest.mark.slow
def test_upload_failing_midway_resumes_without_pushing_twice(built_run, tmp_path):
    run = built_run
    with LocalHub() as hub:
        hub.state.fail_match, hub.state.fail_next = "/api/models/me/mid-merged/commit", [500] * 3
        proc = run_cli("tools.export.push", "--run", str(run), "--repo", "me/mid", env=push_env(hub, tmp_path))
        assert proc.returncode == 2 and "uploading to me/mid-merged failed after 3 tries: HTTP 500" in proc.stderr
        section = manifest.read(run).push
        assert section.complete is False and set(section.repos) == {"adapter"}
        assert hub.state.repos["me/mid"]["commits"] == 1 and hub.state.repos["me/mid-merged"]["commits"] == 0

        again = run_cli("tools.export.push", "--run", str(run), "--repo", "me/mid", env=push_env(hub, tmp_path))
        assert again.returncode == 0, again.stderr
        assert "adapter: pushed to me/mid by the interrupted push" in again.stdout
        assert {k: r["commits"] for k, r in hub.state.repos.items()} == {
            "me/mid": 1,
            "me/mid-merged": 1,
            "me/mid-GGUF": 1,
        }
        section = manifest.read(run).push
        assert section.complete is True and set(section.repos) == {"adapter", "merged", "gguf"}
