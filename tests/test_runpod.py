"""make runpod-* through the real runpod SDK, pointed (RUNPOD_API_BASE_URL) at a local GraphQL server on
127.0.0.1: what the SDK sends (axolotl's image with the bootstrap of the checkout's pushed commit, or a pre-built
IMAGE=; GPU type/count, disks from the plan, env without secrets, what happens when training ends, a name per run),
retries on gateway errors and dropped connections without creating twice or picking up an older pod, clear
errors; and the Dockerfile, runpod.toml, gpus.yaml and the plan agree with each other. Clusters (NODES>1):
tests/test_runpod_clusters.py; the bootstrap itself: tests/test_bootstrap.py."""

from __future__ import annotations

import base64
import json
import os
import re
import stat

import pytest
import yaml

from core import settings
from core.errors import UserError
from core.paths import REPO
from launch.cloud.runpod.spec import SECRET_REF, check_env_value, load_project
from launch.cloud.source import BOOTSTRAP, DOCKER_ARGS
from launch.preflight.plan import CONTAINER_DISK_GB, make_plan
from tests.conftest import git, pushed_checkout, run_cli
from tests.runpod_server import RunPodServer

KEY = "rp-fake-key-for-tests-only-0000"
HF_TOKEN = "hf_fake-token-for-tests-only-0123-4567"
RECIPE = "llama31-8b-instruct"
NAME = re.compile(r"^affinage-llama31-8b-instruct-\d{8}-\d{6}-[0-9a-f]{4}$")  # per run, not per recipe


@pytest.fixture
def runpod(outputs):
    with RunPodServer() as server:
        yield server


def rp_env(server, **extra) -> dict:
    return {
        "RUNPOD_API_BASE_URL": server.url,
        "RUNPOD_API_KEY": KEY,
        "RUNPOD_BACKOFF_S": "0",
        "HF_TOKEN": HF_TOKEN,
        **extra,
    }


def runpod_cli(cmd: str, env: dict, *args: str):
    return run_cli("launch.cloud.commands", cmd, *args, env=env, timeout=120)


def test_up_sends_the_planned_pod_without_secrets(runpod, outputs):
    proc = runpod_cli("up", rp_env(runpod, RECIPE=RECIPE, GPU="H100", GPUS="1", PUSH_REPO="me/brie-8b"))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    plan = make_plan(RECIPE, settings.load(), "H100", 1)
    project = load_project().project
    assert [r["field"] for r in runpod.state.requests] == ["gpuTypes", "podFindAndDeployOnDemand"]
    sent = runpod.state.ops("podFindAndDeployOnDemand")[0]
    args = sent["args"]
    assert sent["auth"] == f"Bearer {KEY}" and sent["path"] == "/graphql"
    assert args["imageName"] == project.base_image and project.base_image.startswith("axolotlai/axolotl-cloud:")
    assert NAME.match(args["name"]) and args["dockerArgs"] == DOCKER_ARGS
    assert args["gpuTypeId"] == "NVIDIA H100 80GB HBM3" and args["gpuCount"] == 1 and args["cloudType"] == "SECURE"
    assert args["containerDiskInGb"] == CONTAINER_DISK_GB and args["volumeInGb"] == plan.volume_gb >= 30
    assert args["volumeMountPath"] == "/runpod-volume" and args["ports"] == "22/tcp"
    env = {e["key"]: e["value"] for e in args["env"]}
    assert env["RECIPE"] == RECIPE and env["PUSH_REPO"] == "me/brie-8b" and env["ON_FINISH"] == "stop"
    assert env["HF_TOKEN"] == "{{ RUNPOD_SECRET_HF_TOKEN }}" and env["OUTPUTS"] == "/runpod-volume/outputs"
    checkout = os.environ["SOURCE_CHECKOUT"]  # a clean clone of a local bare remote (tests/conftest.py)
    assert env["AFFINAGE_COMMIT"] == git(checkout, "rev-parse", "HEAD")
    assert env["AFFINAGE_REPO"] == git(checkout, "remote", "get-url", "origin")
    assert base64.b64decode(env["AFFINAGE_BOOT"]) == BOOTSTRAP.read_bytes()
    for req in runpod.state.requests:
        assert HF_TOKEN not in req["query"] and KEY not in req["query"]
    assert f"${plan.usd:.2f}" in proc.stdout and "ON_FINISH=stop" in proc.stdout
    record = (outputs / "pods" / "pod001.json").read_text()
    assert (
        json.loads(record)["request"]["gpu_type_id"] == "NVIDIA H100 80GB HBM3" and json.loads(record)["kind"] == "pod"
    )
    assert HF_TOKEN not in record + proc.stdout + proc.stderr and KEY not in record + proc.stdout + proc.stderr
    assert (outputs / "pods" / "LATEST").read_text().strip() == "pod001"


def test_dry_run_prints_the_sdk_request_and_sends_nothing(runpod, outputs):
    proc = runpod_cli("up", rp_env(runpod, RECIPE=RECIPE, GPU="A100-80GB", NETWORK_VOLUME="vol1"), "--dry-run")
    assert proc.returncode == 0, proc.stderr
    assert runpod.state.requests == [] and not (outputs / "pods").exists()
    text = proc.stdout.split("would be sent (pod):", 1)[1]
    assert "podFindAndDeployOnDemand" in text and 'gpuTypeId: "NVIDIA A100 80GB PCIe"' in text
    assert 'networkVolumeId: "vol1"' in text and "volumeInGb: 0" in text and f'dockerArgs: "{DOCKER_ARGS}"' in text
    assert '{ key: "ON_FINISH", value: "terminate" }' in text  # outputs on a network volume outlive the pod
    assert "estimated: ~" in proc.stdout


def test_status_logs_and_down(runpod, outputs, tmp_path):
    env = rp_env(runpod, RECIPE=RECIPE, GPU="H100")
    assert runpod_cli("up", env).returncode == 0
    st = runpod_cli("status", env)
    assert st.returncode == 0 and "pod pod001" in st.stdout and "RUNNING" in st.stdout and "1.50 h" in st.stdout

    bin_dir = tmp_path / "bin"  # a stand-in ssh that records its argv
    bin_dir.mkdir()
    fake = bin_dir / "ssh"
    fake.write_text(f'#!/bin/sh\necho "$@" > {tmp_path / "ssh-args"}\n')
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    lg = runpod_cli("logs", {**env, "PATH": f"{bin_dir}:{os.environ['PATH']}"})
    assert lg.returncode == 0, lg.stderr
    assert (tmp_path / "ssh-args").read_text().split() == [
        "-o",
        "StrictHostKeyChecking=accept-new",
        "-p",
        "22022",
        "root@203.0.113.7",
        "tail",
        "-n",
        "200",
        "/runpod-volume/outputs/pods/pod001.log",
    ]

    down = runpod_cli("down", env)  # the pod's own volume holds the outputs: stop, keep the volume
    assert down.returncode == 0 and "stopped" in down.stdout and runpod.state.ops("podStop")
    assert not runpod.state.ops("podTerminate")
    gone = runpod_cli("down", {**env, "FORCE": "1"})
    assert gone.returncode == 0 and runpod.state.ops("podTerminate")[0]["args"]["podId"] == "pod001"
    assert "not found" in runpod_cli("status", env).stdout


def test_retries_gateway_errors_and_never_creates_twice(runpod, outputs):
    # older pods of the same recipe (the per-recipe name of before, and an earlier run's): never picked up
    for pid, name in (
        ("old1", "affinage-llama31-8b-instruct"),
        ("old2", "affinage-llama31-8b-instruct-20261130-080000-0a1b"),
    ):
        runpod.state.pods[pid] = {"id": pid, "name": name, "desiredStatus": "EXITED", "volumeInGb": 50}
    # a 503 page on the GPU lookup, then the create's reply is lost after the pod was made
    runpod.state.fail_next = [503, None, "lost"]
    proc = runpod_cli("up", rp_env(runpod, RECIPE=RECIPE, GPU="H100"))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "retry 1/3" in proc.stdout
    assert len(runpod.state.pods) == 3 and len(runpod.state.ops("podFindAndDeployOnDemand")) == 1
    [made] = runpod.state.ops("podFindAndDeployOnDemand")
    assert (outputs / "pods" / "LATEST").read_text().strip() == "pod003" and NAME.match(made["args"]["name"])
    assert runpod.state.pods["pod003"]["name"] == made["args"]["name"]


def test_every_run_gets_its_own_pod_name(runpod, outputs):
    env = rp_env(runpod, RECIPE=RECIPE, GPU="H100")
    assert runpod_cli("up", env).returncode == 0 and runpod_cli("up", env).returncode == 0
    names = [r["args"]["name"] for r in runpod.state.ops("podFindAndDeployOnDemand")]
    assert len(set(names)) == 2 and all(NAME.match(n) for n in names)


def test_bounded_retries_then_a_clear_error(runpod, outputs):
    runpod.state.fail_next, runpod.state.fail_only = [500, 429, "drop", 502], {"gpuTypes"}
    proc = runpod_cli("up", rp_env(runpod, RECIPE=RECIPE, GPU="H100"))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "RunPod API did not answer usably while creating pod" in proc.stderr and "4 attempts" in proc.stderr
    assert KEY not in proc.stdout + proc.stderr and not runpod.state.pods
    assert len(runpod.state.ops("gpuTypes")) == 4 and not runpod.state.ops("podFindAndDeployOnDemand")


@pytest.mark.parametrize(
    "extra, fault, message",
    [
        (
            {},
            "error:There are no longer any instances available with the requested specifications.",
            "RunPod API error while creating pod affinage-llama31-8b-instruct-",
        ),
        ({"RUNPOD_API_KEY": ""}, None, "RUNPOD_API_KEY is not set"),
        ({"GPU": "B300"}, None, "B300"),
        ({"NODES": "2"}, None, "NODES=2 without NETWORK_VOLUME"),
        ({"ARGS": '--lora_r=8 --hub_model_id="x"'}, None, "ARGS contains a quote, backslash or line break"),
        ({"RECIPE": "qwen3-32b", "GPU": "RTX3090"}, None, "does not fit on 1 x RTX3090"),
        ({"CLOUD_TYPE": "SPOT"}, None, "CLOUD_TYPE must be SECURE, COMMUNITY or ALL"),
        ({"CLOUD": "SECURE"}, None, "unknown cloud 'secure' (known: runpod)"),
    ],
)
def test_clear_errors(runpod, outputs, extra, fault, message):
    if fault:
        runpod.state.fail_next = [None, fault]  # the GPU lookup succeeds, the create fails
    proc = runpod_cli("up", {**rp_env(runpod, RECIPE=RECIPE, GPU="H100"), **extra})
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert message in proc.stderr and "Traceback" not in proc.stderr
    assert not runpod.state.pods


def test_no_credential_travels_by_value():
    with pytest.raises(UserError, match="must not be sent to a pod by value"):
        check_env_value("HF_TOKEN", HF_TOKEN)
    with pytest.raises(UserError, match="looks like an access token"):
        check_env_value("NOTES", "hf_" + "A" * 34)
    check_env_value("HF_TOKEN", SECRET_REF.format(name="HF_TOKEN"))


def test_template_from_the_project_file(runpod, outputs):
    proc = runpod_cli("template", rp_env(runpod))
    assert proc.returncode == 0, proc.stderr
    args = runpod.state.ops("saveTemplate")[0]["args"]
    project = load_project().project
    assert args["imageName"] == project.base_image and args["volumeMountPath"] == "/runpod-volume"
    assert args["containerDiskInGb"] == project.container_disk_size_gb and args["ports"] == "22/tcp"
    assert args["dockerArgs"] == DOCKER_ARGS and args["isServerless"] is False  # the bootstrap on axolotl's image
    boot = {"AFFINAGE_BOOT", "AFFINAGE_COMMIT", "AFFINAGE_REPO"}
    assert {e["key"] for e in args["env"]} == set(project.env_vars) | boot and HF_TOKEN not in json.dumps(args)


DIGEST = "sha256:" + "0123456789abcdef" * 4


@pytest.mark.parametrize(
    "image",
    ["ghcr.io/me/affinage:abc123", f"ghcr.io/me/affinage@{DIGEST}", f"registry.local:5000/team/img:v1@{DIGEST}"],
)
def test_a_prebuilt_image_is_the_fast_path(runpod, outputs, tmp_path, image):
    """IMAGE= takes any image reference, a digest included, and sends it to RunPod unchanged."""
    dirty, _ = pushed_checkout(tmp_path / "dirty")
    (dirty / "README.md").write_text("edited, not committed\n")  # not consulted: the image holds the code
    env = rp_env(runpod, RECIPE=RECIPE, GPU="H100", IMAGE=image, SOURCE_CHECKOUT=str(dirty))
    proc = runpod_cli("up", env)
    assert proc.returncode == 0, proc.stderr
    args = runpod.state.ops("podFindAndDeployOnDemand")[0]["args"]
    assert args["imageName"] == image and args["dockerArgs"] == ""
    assert not {e["key"] for e in args["env"]} & {"AFFINAGE_BOOT", "AFFINAGE_COMMIT", "AFFINAGE_REPO"}
    tpl = runpod_cli("template", env)
    assert tpl.returncode == 0 and runpod.state.ops("saveTemplate")[0]["args"]["dockerArgs"] == ""


@pytest.mark.parametrize(
    "change, message", [("edit", "has changes that are not committed"), ("commit", "is not on any branch")]
)
def test_a_dirty_or_unpushed_checkout_is_refused(runpod, outputs, tmp_path, change, message):
    work, _ = pushed_checkout(tmp_path / "src")
    (work / "README.md").write_text("changed\n")
    if change == "commit":
        git(work, "commit", "-q", "-am", "not pushed")
    proc = runpod_cli("up", rp_env(runpod, RECIPE=RECIPE, GPU="H100", SOURCE_CHECKOUT=str(work)), "--dry-run")
    assert proc.returncode == 2 and message in proc.stderr and "Traceback" not in proc.stderr
    assert "make image" in proc.stderr and "git push" in proc.stderr and runpod.state.requests == []


def test_dockerfile_runpod_toml_gpus_and_plan_agree():
    # the image tag itself: tests/test_image.py
    docker = (REPO / "Dockerfile").read_text()
    project = load_project().project
    env = dict(re.findall(r"(\w+)=(\S+)", docker.split("\nENV ", 1)[1].split("\nCMD", 1)[0]))
    mount = project.volume_mount_path
    assert env["OUTPUTS"] == project.env_vars["OUTPUTS"] and env["HF_HOME"] == project.env_vars["HF_HOME"]
    assert env["OUTPUTS"].startswith(mount + "/") and env["HF_HOME"].startswith(mount + "/")
    assert not re.search(r"WORKDIR\s+" + re.escape(mount), docker)  # the volume mount would hide the repo
    assert mount != "/workspace"  # where axolotl's newer images keep their Python environment
    assert "SETUP_MODE=image" in docker  # inside the image, set-up replaces nothing it provides
    assert '"-m", "launch.cloud.runpod.entrypoint"]' in docker.splitlines()[-1]
    for line in docker.splitlines():  # no credential as build arg or layer env
        if re.match(r"\s*(ARG|ENV)\b", line):
            assert not re.search(r"TOKEN|API_KEY|SECRET|PASSWORD", line), line
    ignored = (REPO / ".dockerignore").read_text().split()
    assert {".env", ".venv", "outputs", ".git"} <= set(ignored)
    gpu_ids = {
        row["runpod_id"]
        for row in yaml.safe_load((REPO / "launch" / "preflight" / "gpus.yaml").read_text())["gpus"].values()
    }
    assert set(project.gpu_types) <= gpu_ids
    assert project.container_disk_size_gb == CONTAINER_DISK_GB and "22/tcp" in project.port_list
