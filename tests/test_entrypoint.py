"""The pod's entrypoint (launch/cloud/runpod/entrypoint.py), run as the image runs it, with the real runpod SDK
pointed at the local RunPod server: bad pod env fails before any training and still stops the pod (a failed pod
must not keep billing), a new pod on the same volume resumes the run, a cluster's node 0 deletes the cluster. The
whole pod (train, merge, convert, push, terminate, and a scan of every file for the keys) runs in
tests/test_pod_start.py, on an image laid out like axolotl's."""

from __future__ import annotations

import pytest

from core import manifest as run_manifest
from tests.conftest import run_cli
from tests.runpod_server import RunPodServer

KEY = "rp-fake-key-for-tests-only-0000"
HF_TOKEN = "hf_fake-token-for-tests-only-0123-4567"
POD = "podtest1"
ENTRYPOINT = "launch.cloud.runpod.entrypoint"


def pod_env(server, outputs, **extra) -> dict:
    return {
        "RUNPOD_API_BASE_URL": server.url,
        "RUNPOD_API_KEY": KEY,
        "RUNPOD_BACKOFF_S": "0",
        "RUNPOD_POD_ID": POD,
        "OUTPUTS": str(outputs),
        **extra,
    }


def serve_pod(server):
    server.state.pods[POD] = {"id": POD, "name": "affinage-x", "desiredStatus": "RUNNING", "volumeInGb": 50}


@pytest.mark.parametrize(
    "extra, message",
    [
        ({}, "RECIPE is not set in the pod's environment"),
        (
            {"RECIPE": "smollm2-135m-cpu", "PUSH_REPO": "me/x", "HF_TOKEN": ""},
            "PUSH_REPO is set but the pod has no HF_TOKEN",
        ),
        (
            {"RECIPE": "smollm2-135m-cpu", "PUSH_REPO": "me/x", "HF_TOKEN": "{{ RUNPOD_SECRET_HF_TOKEN }}"},
            "unresolved secret reference",
        ),
        ({"RECIPE": "smollm2-135m-cpu", "ON_FINISH": "explode"}, "ON_FINISH must be one of stop, terminate, none"),
    ],
)
def test_bad_pod_env_fails_before_training_and_stops_the_pod(tmp_path, extra, message):
    outputs = tmp_path / "volume"
    with RunPodServer() as server:
        serve_pod(server)
        proc = run_cli(ENTRYPOINT, env={"RECIPE": "", **pod_env(server, outputs, **extra)}, timeout=120)
        assert proc.returncode == 2 and message in proc.stdout
        assert not (outputs / "runs").exists()
        assert (outputs / "pods" / f"{POD}.log").read_text().count(message) == 1
        stops = server.state.ops("podStop")
        assert [s["args"]["podId"] for s in stops] == [POD] and server.state.pods[POD]["desiredStatus"] == "EXITED"


@pytest.mark.slow
def test_a_new_pod_on_the_same_volume_resumes_the_run(tiny_model, tmp_path):
    """The first pod's disk fills up at checkpoint-4 (ENOSPC injected as in test_disk.py); it stops itself.
    A second pod on the same volume resumes the unfinished run from checkpoint-2 and completes it."""
    from tests.test_disk import full_disk_at, tiny_run_args

    outputs = tmp_path / "volume"
    args = tiny_run_args(tiny_model("llama"))
    with RunPodServer() as server:
        serve_pod(server)
        server.state.pods["podtest2"] = {**server.state.pods[POD], "id": "podtest2"}
        first = run_cli(
            ENTRYPOINT,
            env=pod_env(server, outputs, RECIPE="smollm2-135m-cpu", ARGS=args, **full_disk_at(4, tmp_path / "inject")),
        )
        assert first.returncode == 2 and "the disk filled up during training" in first.stdout
        second = run_cli(
            ENTRYPOINT,
            env=pod_env(server, outputs, RECIPE="smollm2-135m-cpu", ARGS=args, RUNPOD_POD_ID="podtest2"),
            timeout=900,
        )
        assert second.returncode == 0, second.stdout[-3000:]
        assert [s["args"]["podId"] for s in server.state.ops("podStop")] == [POD, "podtest2"]
    [run] = [p for p in (outputs / "runs" / "smollm2-135m-cpu").iterdir() if p.is_dir()]
    assert f"resuming the unfinished run {run}" in second.stdout
    m = run_manifest.read(run)
    assert m.status == "completed" and m.resumes[-1].step == 2 and m.train.summary.global_step == 6


@pytest.mark.parametrize("rank, deleted", [("0", True), ("1", False)])
def test_on_a_cluster_node_0_deletes_the_cluster_and_the_others_leave_it(tmp_path, rank, deleted):
    """A cluster cannot stop: ON_FINISH deletes it (REST API v2), from node 0 only; no pod is stopped."""
    outputs = tmp_path / "volume"
    with RunPodServer() as server:
        serve_pod(server)
        server.state.clusters["c1"] = {"id": "c1", "name": "affinage-x-20261201-000000-abcd"}
        server.state.cluster_pods["c1"] = []
        env = pod_env(
            server,
            outputs,
            RECIPE="",  # fails before training, so the end is reached at once
            RUNPOD_REST_URL=server.url,
            CLUSTER_NAME="affinage-x-20261201-000000-abcd",
            NODE_RANK=rank,
            ON_FINISH="terminate",
        )
        proc = run_cli(ENTRYPOINT, env=env, timeout=120)
        assert proc.returncode == 2 and "RECIPE is not set" in proc.stdout
        assert ("c1" not in server.state.clusters) == deleted and not server.state.ops("podStop")
        said = "cluster c1 (affinage-x-20261201-000000-abcd): delete requested" if deleted else "node 0 deletes cluster"
        assert said in proc.stdout
