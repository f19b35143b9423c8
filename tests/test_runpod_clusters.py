"""make runpod-up NODES>1: an Instant Cluster through RunPod's REST API v2 (POST /v2/clusters), against the local
RunPod server's REST endpoints, which validate the body as the published spec does. Sized by make plan for the
whole cluster, the same dry run, retries, secret references and ON_FINISH as single pods; runpod-status, -logs
and -down understand clusters (delete is the only stop); bad cluster sizes are clear errors."""

from __future__ import annotations

import json
import os
import stat

import pytest

from core import settings
from launch.cloud.source import DOCKER_ARGS
from launch.preflight.plan import make_plan
from tests.conftest import run_cli
from tests.runpod_server import COMPUTE_KEYS, CREATE_KEYS, RunPodServer
from tests.test_runpod import HF_TOKEN, KEY, NAME

RECIPE = "llama31-8b-instruct"


@pytest.fixture
def runpod(outputs):
    with RunPodServer() as server:
        yield server


def env_for(server, **extra) -> dict:
    return {
        "RUNPOD_API_BASE_URL": server.url,
        "RUNPOD_REST_URL": server.url,
        "RUNPOD_API_KEY": KEY,
        "RUNPOD_BACKOFF_S": "0",
        "HF_TOKEN": HF_TOKEN,
        "RECIPE": RECIPE,
        "GPU": "H100",
        "GPUS": "8",
        "NODES": "2",
        **extra,
    }


def cli(cmd: str, env: dict, *args: str):
    return run_cli("launch.cloud.commands", cmd, *args, env=env, timeout=120)


def creates(server) -> list[dict]:
    return server.state.ops("POST /v2/clusters")


def test_dry_run_prints_the_cluster_request_sized_by_the_plan(runpod, outputs):
    proc = cli("up", env_for(runpod, NETWORK_VOLUME="vol1", PUSH_REPO="me/x"), "--dry-run")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert runpod.state.requests == [] and not (outputs / "pods").exists()
    body = json.loads(proc.stdout.split("POST /v2/clusters\n", 1)[1])
    assert set(body) <= CREATE_KEYS and set(body["compute"]) == COMPUTE_KEYS  # what the API accepts, no more
    assert body["type"] == "TRAINING" and NAME.match(body["name"])
    assert body["compute"] == {"gpuTypeId": "NVIDIA H100 80GB HBM3", "gpuCountPerPod": 8, "podCount": 2}
    assert body["mounts"] == {"network": [{"volumeId": "vol1", "path": "/runpod-volume"}]}
    assert body["args"] == DOCKER_ARGS and body["image"].startswith("axolotlai/axolotl-cloud:")
    env = body["env"]
    assert env["CLUSTER_NAME"] == body["name"] and env["ON_FINISH"] == "terminate" and env["RECIPE"] == RECIPE
    assert env["HF_TOKEN"] == "{{ RUNPOD_SECRET_HF_TOKEN }}" and HF_TOKEN not in proc.stdout
    plan = make_plan(RECIPE, settings.load(), "H100", 8, 2)
    assert plan.topology.world_size == 16 and f"${plan.usd:.2f}" in proc.stdout and "x 16 x $2.69/h" in proc.stdout


def test_up_creates_a_cluster_and_status_logs_down_follow_it(runpod, outputs, tmp_path):
    env = env_for(runpod, PUSH_REPO="me/x")  # pushed before the delete: the pods' own volumes may go
    proc = cli("up", env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    [sent] = creates(runpod)
    assert sent["auth"] == f"Bearer {KEY}" and sent["args"]["mounts"]["persistent"]["path"] == "/runpod-volume"
    assert sent["args"]["mounts"]["persistent"]["size"] == make_plan(RECIPE, settings.load(), "H100", 8, 2).volume_gb
    assert KEY not in sent["query"] and HF_TOKEN not in sent["query"]
    record = json.loads((outputs / "pods" / "cluster001.json").read_text())
    assert record["kind"] == "cluster" and (outputs / "pods" / "LATEST").read_text().strip() == "cluster001"

    st = cli("status", env)
    assert st.returncode == 0, st.stderr
    assert "cluster cluster001" in st.stdout and "2 RUNNING" in st.stdout and "2 pods x 8 x NVIDIA H100" in st.stdout
    assert "$43.04/h for all its pods" in st.stdout

    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "ssh").write_text(f'#!/bin/sh\necho "$@" > {tmp_path / "ssh-args"}\n')
    (bin_dir / "ssh").chmod(0o755 | stat.S_IEXEC)
    lg = cli("logs", {**env, "PATH": f"{bin_dir}:{os.environ['PATH']}"})
    assert lg.returncode == 0, lg.stderr
    args = (tmp_path / "ssh-args").read_text().split()
    assert (
        args[3:6] == ["22122", "root@203.0.113.9", "tail"]
        and args[-1] == "/runpod-volume/outputs/pods/cluster001-pod0.log"
    )

    refused = cli("down", env)  # host-local volumes and no stop: deleting must be asked for
    assert refused.returncode == 2 and "cannot stop" in refused.stderr and "FORCE=1" in refused.stderr
    assert not runpod.state.ops("DELETE /v2/clusters/{id}")
    gone = cli("down", {**env, "FORCE": "1"})
    assert gone.returncode == 0 and "deleted" in gone.stdout and runpod.state.clusters == {}
    assert "not found" in cli("status", env).stdout


def test_a_cluster_on_a_network_volume_is_deleted_directly(runpod, outputs):
    env = env_for(runpod, NETWORK_VOLUME="vol1")
    assert cli("up", env).returncode == 0
    down = cli("down", env)
    assert down.returncode == 0 and runpod.state.ops("DELETE /v2/clusters/{id}") and not runpod.state.clusters


def test_retries_and_a_lost_reply_never_create_twice(runpod, outputs):
    runpod.state.clusters["old"] = {"id": "old", "name": "affinage-llama31-8b-instruct-20261130-080000-0a1b"}
    runpod.state.cluster_pods["old"] = []
    runpod.state.fail_only = {"POST /v2/clusters"}
    runpod.state.fail_next = [503, "lost"]
    proc = cli("up", env_for(runpod, NETWORK_VOLUME="vol1"))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "retry 1/3" in proc.stdout and "retry 2/3" in proc.stdout
    assert len(runpod.state.clusters) == 2 and (outputs / "pods" / "LATEST").read_text().strip() == "cluster002"


def test_bounded_retries_then_a_clear_error(runpod, outputs):
    runpod.state.fail_only = {"POST /v2/clusters"}
    runpod.state.fail_next = [500, 429, "drop", 502]
    proc = cli("up", env_for(runpod, NETWORK_VOLUME="vol1"))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "did not answer usably while creating cluster affinage-llama31-8b-instruct-" in proc.stderr
    assert "4 attempts" in proc.stderr and len(creates(runpod)) == 4 and not runpod.state.clusters


def test_the_apis_own_refusal_is_one_clear_line(runpod, outputs, tmp_path):
    from launch.preflight.estimate import GPU_TABLE

    table = tmp_path / "gpus.yaml"  # a GPU row whose id RunPod does not know
    table.write_text(
        GPU_TABLE.read_text()
        + '  B300: {runpod_id: "NVIDIA B300", vram_gib: 180, bf16_tflops: 2250, usd_per_hour: 6}\n'
    )
    proc = cli("up", env_for(runpod, NETWORK_VOLUME="vol1", GPU="B300", GPU_TABLE=str(table)))
    assert proc.returncode == 2, proc.stdout
    assert "RunPod API error while creating cluster" in proc.stderr and "Bad Request: unknown gpuTypeId" in proc.stderr
    assert len(creates(runpod)) == 1  # a 400 is not retried


@pytest.mark.parametrize(
    "extra, message",
    [
        ({"NODES": "300", "NETWORK_VOLUME": "vol1"}, "NODES=300: a RunPod cluster has 2 to 250 pods"),
        ({"GPUS": "16", "NETWORK_VOLUME": "vol1"}, "GPUS=16 per node: a RunPod pod has at most 8 GPUs"),
        ({"ON_FINISH": "stop", "NETWORK_VOLUME": "vol1"}, "a RunPod cluster cannot be stopped, only deleted"),
        ({}, "NODES=2 without NETWORK_VOLUME"),
        ({"GPUS": "0"}, "GPUS must be at least 1"),
    ],
)
def test_bad_cluster_sizes_are_clear_errors(runpod, outputs, extra, message):
    proc = cli("up", env_for(runpod, **extra), "--dry-run")
    assert proc.returncode == 2 and message in proc.stderr and "Traceback" not in proc.stderr
    assert runpod.state.requests == []
