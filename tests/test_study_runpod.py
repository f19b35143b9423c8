"""RUNPOD=1 against the local RunPod server (tests/runpod_server.py) and the local Hub (tests/hub_server.py),
with each pod's command run here as the pod would run it (a pre-built image's CMD: the entrypoint, which runs
the study's job, eval.study.pod, when STUDY_SPEC is set), with the pod's env as RunPod would give it, secret
references resolved. Two runs and a budget for one: the first pod is sized by the plan, trains, evaluates,
judges, uploads its results to the private results repo and terminates itself; the study collects them; the
second run is not launched (budget), and says so. Re-run with a bigger budget: the finished run is skipped,
not relaunched, the second one gets its pod, and both are in the report."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time

import pytest

from core import manifest, settings
from core.paths import REPO
from eval.study import report, state
from tests.conftest import OFFLINE, run_cli
from tests.hub_server import LocalHub
from tests.openai_server import OpenAIServer
from tests.runpod_server import RunPodServer
from tests.test_study_cpu import longer_wins

TOKEN = "hf_fake-token-for-tests-only-0123-4567"
KEY = "rp-fake-key-for-tests-only-0000"
STUDY = """name: cloud
runs:
  - {name: one, recipe: smollm2-135m-cpu}
  - {name: two, recipe: smollm2-135m-cpu, overrides: {lora_r: 4, lora_alpha: 8}}
overrides: {max_steps: 2, save_steps: 2, eval_steps: 2, logging_steps: 1, warmup_steps: 0}
eval: {backends: [hf, base], limit: 2, max_gen_toks: 8}
judge: {judges: [local], suite: brie, limit: 1, max_new_tokens: 8}
budget: {max_cost: 4, gpu: L4}
hub_repo: me/cloud-study
"""


class Pods:
    """Plays RunPod's part after a create: starts the pod's command (a pre-built image's CMD, the entrypoint, which
    runs the study's job on STUDY_SPEC) with the pod's env (RunPod resolves the
    secret references; its API key and pod id are RunPod's own variables)."""

    def __init__(self, rp: RunPodServer, hub: LocalHub, judge_url: str, folder):
        self.rp, self.hub, self.judge_url, self.folder = rp, hub, judge_url, folder
        self.procs: dict[str, subprocess.Popen] = {}
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.loop, daemon=True)

    def env(self, pod: dict) -> dict[str, str]:
        env = dict(e.split("=", 1) for e in pod["env"])
        secrets = {"HF_TOKEN": TOKEN}
        env = {k: secrets.get(k, v) if v.startswith("{{ RUNPOD_SECRET_") else v for k, v in env.items()}
        return {
            **{k: v for k, v in os.environ.items() if k not in ("RECIPE", "ARGS", "RUN", "STUDY", "RUNPOD")},
            **OFFLINE,
            **env,
            "PYTHONPATH": str(REPO),
            "RUNPOD_POD_ID": pod["id"],
            "RUNPOD_API_KEY": KEY,
            "RUNPOD_API_BASE_URL": self.rp.url,
            "RUNPOD_BACKOFF_S": "0",
            "HF_ENDPOINT": self.hub.endpoint,
            "HF_HUB_DISABLE_XET": "1",
            "HF_HUB_OFFLINE": "0",
            "HF_HOME": str(self.folder / "pod-hf"),
            "OUTPUTS": str(self.folder / f"volume-{pod['id']}"),  # the pod's own volume
            "JUDGE_URL": self.judge_url,  # the scripted judge stands in for llama.cpp's server on the pod
            "STUDY_POLL_S": "2",  # progress reports every 2 s instead of every 2 minutes
        }

    def loop(self) -> None:
        while not self.stop.is_set():
            with self.rp.state.lock:
                pods = [dict(p) for p in self.rp.state.pods.values()]
            for pod in pods:
                if pod["id"] not in self.procs:
                    assert not pod["dockerArgs"], pod["dockerArgs"]  # a pre-built image: its CMD, the entrypoint
                    log = open(self.folder / f"{pod['id']}.log", "w")  # noqa: SIM115 - kept open by the child
                    self.procs[pod["id"]] = subprocess.Popen(
                        [sys.executable, "-m", "launch.cloud.runpod.entrypoint"],
                        cwd=REPO,
                        env=self.env(pod),
                        stdout=log,
                        stderr=log,
                    )
            time.sleep(0.5)

    def __enter__(self) -> Pods:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        self.thread.join()
        for proc in self.procs.values():
            proc.wait(timeout=600)


@pytest.mark.slow
def test_pods_within_budget_upload_collect_and_resume(tmp_path, outputs, tiny_model):
    study = tmp_path / "cloud.yaml"  # a tiny random model: what is tested is the pods' plumbing, not the model
    study.write_text(STUDY.replace("overrides: {", f"overrides: {{base_model: {tiny_model('llama')}, ", 1))
    with (
        RunPodServer() as rp,
        LocalHub() as hub,
        OpenAIServer(longer_wins) as judge,
        Pods(rp, hub, judge.url, tmp_path),
    ):
        rp.state.pod_uptime_s, rp.state.pod_cost_per_hr = 60, 0.5  # each pod reports $0.0083 spent
        env = {
            "OUTPUTS": str(outputs),
            "RUNPOD": "1",
            "RUNPOD_API_KEY": KEY,
            "RUNPOD_API_BASE_URL": rp.url,
            "RUNPOD_BACKOFF_S": "0",
            "HF_ENDPOINT": hub.endpoint,
            "HF_TOKEN": TOKEN,
            "HF_HUB_DISABLE_XET": "1",
            "HF_HUB_OFFLINE": "0",
            "HF_HOME": str(tmp_path / "hf"),
            "PRICE_PER_HOUR": "10",  # $10/h x (plan + 0.25 h of pod overhead): ~$2.5 a pod, so $4 buys one
            "STUDY_POLL_S": "1",
            "IMAGE": "ghcr.io/affinage/affinage:test",  # a pre-built image: the pod's command is the study's job
        }
        first = run_cli("eval.study.run", str(study), env=env, timeout=1800)
        said = first.stdout + first.stderr
        assert first.returncode == 2 and "two: not launched (budget)" in said, said[-4000:]
        creates = rp.state.ops("podFindAndDeployOnDemand")
        assert len(creates) == 1
        args = creates[0]["args"]
        pod_env = {e["key"]: e["value"] for e in args["env"]}
        assert args["name"].startswith("affinage-cloud-one-") and not args.get("dockerArgs")  # the image's CMD
        assert pod_env["ON_FINISH"] == "terminate" and pod_env["STUDY_RUN"] == "one"
        assert pod_env["HF_TOKEN"] == "{{ RUNPOD_SECRET_HF_TOKEN }}" and TOKEN not in creates[0]["query"]
        assert rp.state.ops("podTerminate") and not rp.state.pods  # the pod stopped itself
        repo = hub.state.repos["me/cloud-study"]
        assert repo["private"] and repo["type"] == "dataset"
        files = set(repo["files"])
        run_prefix = next(f for f in files if f.endswith("/manifest.json")).rsplit("/", 1)[0]
        assert run_prefix.startswith("one/runs/smollm2-135m-cpu/")
        for rel in ("eval/samples/hf.jsonl", "eval/samples/base.jsonl", "judge/local.jsonl", "judge/generations.jsonl"):
            assert f"{run_prefix}/{rel}" in files, rel
        assert f"{run_prefix}/logs/train.log" in files and "one/pod.log" in files
        assert "one/progress.json" in files  # step and loss, for the study's live table
        assert not any(f.endswith("adapter_model.safetensors") for f in files)  # upload_adapter: false
        assert all(TOKEN.encode() not in b for b in repo["files"].values())

        _, runs, jobs, paths = report.load(str(study), settings.load())
        collected = state.run_dir(paths, runs[0])
        assert collected is not None and manifest.read(collected).lm_eval.base is not None
        assert all(state.progress(jobs["one"], collected).values())
        text = (paths.report / "report.md").read_text()
        assert "1 of 2 runs finished; 1 budget stop." in text and "| two | smollm2-135m-cpu |" in text
        st = state.read_state(paths)
        assert st["runs"]["one"]["pods"][0]["spent_usd"] == pytest.approx(60 / 3600 * 0.5, abs=1e-4)

        second = run_cli("eval.study.run", str(study), env={**env, "MAX_COST": "10"}, timeout=1800)
        said = second.stdout + second.stderr
        assert second.returncode == 0, said[-4000:]
        assert "one: done (finished before: skipped)" in said
        creates = rp.state.ops("podFindAndDeployOnDemand")
        assert [c["args"]["name"][:18] for c in creates] == ["affinage-cloud-one", "affinage-cloud-two"]
        assert "2 of 2 runs finished." in (paths.report / "report.md").read_text()
    every_file = b"".join(p.read_bytes() for p in outputs.rglob("*") if p.is_file())
    assert TOKEN.encode() not in every_file and KEY.encode() not in every_file


def test_the_budget_counts_what_was_spent_and_launches_nothing_past_it(tmp_path, outputs, monkeypatch):
    """Before any pod: a previous invocation's ended pod spent $3.00 of MAX_COST $4; each run's estimate (the
    plan at $10/h plus the pod overhead) does not fit in what is left, so no pod is created, each run says why
    with the arithmetic, and the study exits 2 with a report saying so."""
    import re

    study_file = tmp_path / "cloud.yaml"
    study_file.write_text(STUDY)
    monkeypatch.setenv("OUTPUTS", str(outputs))
    _, _, _, paths = report.load(str(study_file), settings.load())
    spent = {"id": "old1", "name": "x", "estimate_usd": 2.0, "estimate_h": 0.3, "spent_usd": 3.0, "ended": True}
    state.write_state(paths, {"runs": {"one": {"pods": [spent], "status": "failed"}}})
    with RunPodServer() as rp, LocalHub() as hub:
        env = {
            "OUTPUTS": str(outputs),
            "RUNPOD": "1",
            "MAX_COST": "4",
            "PRICE_PER_HOUR": "10",
            "RUNPOD_API_KEY": KEY,
            "RUNPOD_API_BASE_URL": rp.url,
            "RUNPOD_BACKOFF_S": "0",
            "HF_ENDPOINT": hub.endpoint,
            "HF_TOKEN": TOKEN,
            "HF_HUB_DISABLE_XET": "1",
            "HF_HUB_OFFLINE": "0",
            "HF_HOME": str(tmp_path / "hf"),
            "IMAGE": "ghcr.io/affinage/affinage:test",
        }
        proc = run_cli("eval.study.run", str(study_file), env=env, timeout=300)
        said = proc.stdout + proc.stderr
        assert proc.returncode == 2, said[-3000:]
        assert "one: not launched (budget)" in said and "two: not launched (budget)" in said, said[-3000:]
        assert rp.state.ops("podFindAndDeployOnDemand") == [] and not rp.state.pods
    notes = re.findall(r"not launched: \$(\d+\.\d\d) committed \+ \$(\d+\.\d\d) > MAX_COST \$4\.00", said)
    assert len(notes) == 2 and all(c == "3.00" and 1.0 < float(e) < 4.0 for c, e in notes), notes
    st = state.read_state(paths)
    assert st["runs"]["one"]["status"] == st["runs"]["two"]["status"] == "budget stop"
    assert st["runs"]["one"]["pods"] == [spent]  # what was spent stays recorded
    assert "0 of 2 runs finished; 2 budget stops." in (paths.report / "report.md").read_text()


def test_on_axolotls_image_the_bootstrap_reaches_the_study_job(tmp_path, monkeypatch):
    """Without IMAGE= a pod boots this commit on axolotl's image (launch/cloud/source.py) with the unchanged
    bootstrap, which ends in the training entrypoint; STUDY_SPEC in the pod's env makes that entrypoint run the
    study's job. Run here with the pod's env as the study built it, against the local RunPod server, with no
    HF_TOKEN: the job (not training) refuses it before any GPU time and the pod terminates itself."""
    import base64

    from core import settings
    from eval.study import pods
    from launch.cloud import registry

    checkout = tmp_path / "checkout"
    checkout.mkdir()
    for cmd in (
        ["init", "-q"],
        ["add", "-A"],
        ["-c", "user.email=t@t", "-c", "user.name=t", "commit", "-qm", "x", "--allow-empty"],
    ):
        subprocess.run(["git", "-C", str(checkout), *cmd], check=True)
    study_file = tmp_path / "cloud.yaml"
    study_file.write_text(STUDY)
    monkeypatch.setenv("OUTPUTS", str(tmp_path / "outputs"))
    study, runs, jobs, _ = report.load(str(study_file), settings.load())
    s = settings.load(
        {
            **os.environ,
            "SOURCE_CHECKOUT": str(checkout),
            "SOURCE_ARCHIVE": "/workspace/src.tar.gz",
            "IMAGE": "",
            "PUSH_REPO": "me/not-for-a-study",
            "NODES": "1",
            "ARGS": "--not-this-run",
        }
    )
    planned, usd, hours = pods.request(study, runs[0], jobs["one"], s, registry.get("runpod"))
    kwargs = planned.request.sdk_kwargs()
    boot = base64.b64decode(kwargs["env"]["AFFINAGE_BOOT"]).decode()
    assert boot.rstrip().endswith('exec "$PY" -m launch.cloud.runpod.entrypoint')  # the bootstrap as it is
    assert "base64 -d" in kwargs["docker_args"]  # the bootstrap's own command, unchanged
    env = kwargs["env"]
    assert env["STUDY_RUN"] == "one" and env["ON_FINISH"] == "terminate" and env["STUDY_REPO"] == "me/cloud-study"
    assert env["HF_TOKEN"] == "{{ RUNPOD_SECRET_HF_TOKEN }}" and env["RECIPE"] == "smollm2-135m-cpu"
    assert not {"PUSH_REPO", "NODES"} & set(env)  # one pod, and no push: results go to the study's repo
    assert env["ARGS"] == runs[0].args and "max_steps=2" in env["ARGS"] and "--not-this-run" not in env["ARGS"]
    assert kwargs["name"].startswith("affinage-cloud-one-") and kwargs["gpu_type_id"] == "NVIDIA L4"
    assert planned.name == kwargs["name"] and env["CLOUD"] == "runpod"  # the pod's job finds its provider
    assert usd > 0 and hours > pods.POD_OVERHEAD_H

    volume = tmp_path / "volume"
    with RunPodServer() as rp:
        rp.state.pods["pod1"] = {"id": "pod1", "name": kwargs["name"], "desiredStatus": "RUNNING", "volumeInGb": 50}
        pod_env = {k: v for k, v in env.items() if k != "AFFINAGE_BOOT"}
        pod_env |= {"HF_TOKEN": "", "RUNPOD_POD_ID": "pod1", "RUNPOD_API_KEY": KEY, "RUNPOD_API_BASE_URL": rp.url}
        pod_env |= {"RUNPOD_BACKOFF_S": "0", "OUTPUTS": str(volume)}
        proc = run_cli("launch.cloud.runpod.entrypoint", env=pod_env, timeout=120)
        said = proc.stdout + proc.stderr
        assert proc.returncode == 2 and "HF_TOKEN is not set: the study's results repo is private" in said, said
        assert "launch.train" not in said and not (volume / "runs").exists()  # the study's job, not training
        log = volume / "studies" / "cloud" / "one" / "pod.log"
        assert "HF_TOKEN is not set" in log.read_text()
        assert [op["args"]["podId"] for op in rp.state.ops("podTerminate")] == ["pod1"] and not rp.state.pods
