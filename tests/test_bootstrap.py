"""Pods on axolotl's public image bootstrap this repo at pod start (launch/cloud/bootstrap.sh): tested here against a
local git remote (a bare repo in tmp) whose checkout holds stand-ins for launch/setup.sh and the entrypoint that
record how they were called. The bootstrap fetches exactly the planned commit (not the branch's newer head), sets up
in image mode in the image's own Python, then runs the entrypoint; an archive of the commit on the volume works the
same; a wrong commit or archive fails and still stops the pod through the local RunPod server. And the checkout
side (launch/cloud/source.py): a dirty, unpushed or remote-less checkout is refused with what to do."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from core.errors import UserError
from core.paths import REPO
from launch.cloud.source import BOOTSTRAP, fetchable_url, pushed_source
from tests.conftest import git, pushed_checkout
from tests.runpod_server import RunPodServer
from tests.wheels import build_wheel, make_venv, pip

STUB_SETUP = """#!/usr/bin/env bash
python3 -c 'import json, os; json.dump({k: os.environ.get(k) for k in ("VENV", "SETUP_MODE")}, open("setup-called.json", "w"))'
"""
STUB_ENTRYPOINT = """import os, subprocess
head = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
print(f"ENTRYPOINT at {head or 'no-git'} in {os.getcwd()} with PYTHONPATH={os.environ['PYTHONPATH'].split(os.pathsep)[0]}")
"""
FILES = {
    "launch/setup.sh": STUB_SETUP,
    "launch/__init__.py": "",
    "launch/cloud/__init__.py": "",
    "launch/cloud/runpod/__init__.py": "",
    "launch/cloud/runpod/entrypoint.py": STUB_ENTRYPOINT,
    "core/stack.py": (REPO / "core" / "stack.py").read_text(),  # the real image check
}


@pytest.fixture
def remote(tmp_path):
    """(checkout, remote, the planned commit); the branch then moves on to a newer commit."""
    work, bare = pushed_checkout(tmp_path / "repo", FILES)
    planned = git(work, "rev-parse", "HEAD")
    (work / "NEWER").write_text("a later commit the pod must not run\n")
    git(work, "add", "-A")
    git(work, "commit", "-q", "-m", "newer")
    git(work, "push", "-q", "origin", "HEAD:main")
    return work, bare, planned


def boot(tmp_path, server=None, **env) -> subprocess.CompletedProcess:
    full = {
        **{k: v for k, v in os.environ.items() if not k.startswith("AFFINAGE_")},
        "AFFINAGE_DIR": str(tmp_path / "pod" / "opt"),
        "AFFINAGE_PYTHON": sys.executable,
        "RUNPOD_POD_ID": "podboot",
        "RUNPOD_API_KEY": "rp-fake-key-for-tests-only-0000",
        "DEVICE": "cpu",  # this test machine's torch sees no GPU: the versions are checked, not the GPU
        **({"RUNPOD_API_BASE_URL": server.url, "RUNPOD_REST_URL": server.url} if server else {}),
        **env,
    }
    return subprocess.run(["bash", str(BOOTSTRAP)], env=full, capture_output=True, text=True, timeout=300)


def test_the_pod_runs_exactly_the_planned_commit(tmp_path, remote):
    _, bare, planned = remote
    proc = boot(tmp_path, AFFINAGE_REPO=str(bare), AFFINAGE_COMMIT=planned)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    dest = tmp_path / "pod" / "opt"
    assert f"ENTRYPOINT at {planned} in {dest} with PYTHONPATH={dest}" in proc.stdout
    assert not (dest / "NEWER").exists()
    called = json.loads((dest / "setup-called.json").read_text())
    assert called == {"VENV": sys.prefix, "SETUP_MODE": "image"}  # the image's own Python, image mode
    assert os.readlink(dest / ".venv") == sys.prefix


def test_an_archive_on_the_volume_is_checked_and_unpacked(tmp_path, remote):
    work, _, planned = remote
    archive = tmp_path / "volume" / "affinage.tar.gz"
    archive.parent.mkdir()
    git(work, "archive", "--format=tar.gz", "-o", str(archive), planned)
    proc = boot(tmp_path, AFFINAGE_ARCHIVE=str(archive), AFFINAGE_COMMIT=planned)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "ENTRYPOINT at no-git" in proc.stdout and "unpacked" in proc.stdout


@pytest.mark.parametrize("kind", ["unknown commit", "archive of another commit"])
def test_a_failed_bootstrap_still_stops_the_pod(tmp_path, remote, kind):
    work, bare, planned = remote
    env = {"AFFINAGE_REPO": str(bare), "AFFINAGE_COMMIT": "0" * 40}
    if kind.startswith("archive"):
        archive = tmp_path / "a.tar.gz"
        git(work, "archive", "--format=tar.gz", "-o", str(archive), "HEAD")  # the newer commit, not the planned one
        env = {"AFFINAGE_ARCHIVE": str(archive), "AFFINAGE_COMMIT": planned}
    with RunPodServer() as server:
        server.state.pods["podboot"] = {"id": "podboot", "name": "affinage-x", "desiredStatus": "RUNNING"}
        proc = boot(tmp_path, server, **env)
        assert proc.returncode == 2 and "bootstrap: error:" in proc.stderr and "ENTRYPOINT" not in proc.stdout
        [stop] = server.state.ops("podStop")
        assert stop["args"]["podId"] == "podboot" and "pod podboot: stop requested" in proc.stdout


@pytest.mark.parametrize("device", ["cpu", "gpu"])
def test_an_image_outside_the_supported_range_stops_the_pod_before_set_up(tmp_path, remote, device):
    _, bare, planned = remote
    wheels = tmp_path / "wheels"
    build_wheel(wheels, "axolotl", "0.18.0" if device == "cpu" else "0.21.0")
    build_wheel(wheels, "torch", "2.14.0")  # a stand-in without CUDA
    image_py = make_venv(tmp_path / "image")
    pip(image_py, wheels, "install", "-q", "--no-deps", "axolotl", "torch")
    with RunPodServer() as server:
        server.state.pods["podboot"] = {"id": "podboot", "name": "affinage-x", "desiredStatus": "RUNNING"}
        proc = boot(
            tmp_path,
            server,
            AFFINAGE_REPO=str(bare),
            AFFINAGE_COMMIT=planned,
            AFFINAGE_PYTHON=str(image_py),
            DEVICE=device,
        )
        assert proc.returncode == 2, proc.stdout + proc.stderr
        # cpu: the versions; gpu: a torch that cannot reach CUDA (the stand-in has no torch.version at all)
        found = "axolotl 0.18.0 is outside the supported range" if device == "cpu" else "image check: torch"
        assert found in proc.stderr and "needed: python >=3.12" in proc.stderr and "Traceback" not in proc.stderr
        assert "does not fit the code at " + planned in proc.stderr
        assert not (tmp_path / "pod" / "opt" / "setup-called.json").exists()  # nothing heavy ran
        [stop] = server.state.ops("podStop")
        assert stop["args"]["podId"] == "podboot"


def test_a_failed_cluster_bootstrap_deletes_the_cluster(tmp_path, remote):
    _, bare, _ = remote
    with RunPodServer() as server:
        server.state.clusters["c1"] = {"id": "c1", "name": "affinage-x-run1"}
        server.state.cluster_pods["c1"] = []
        proc = boot(tmp_path, server, AFFINAGE_REPO=str(bare), AFFINAGE_COMMIT="0" * 40, CLUSTER_NAME="affinage-x-run1")
        assert proc.returncode == 2 and server.state.clusters == {}
        assert [r["field"] for r in server.state.requests] == ["GET /v2/clusters", "DELETE /v2/clusters/{id}"]


def test_a_clean_pushed_checkout_is_the_source(remote):
    work, bare, _ = remote
    source = pushed_source(work)
    assert source.commit == git(work, "rev-parse", "HEAD") and source.repo == str(bare)


@pytest.mark.parametrize(
    "change, message",
    [
        ("edit", "has changes that are not committed (README.md)"),
        ("untracked", "has changes that are not committed (notes.txt)"),
        ("unpushed", "is not on any branch of 'origin'"),
        ("no remote", "has no git remote 'origin'"),
        ("token in url", "holds a credential"),
    ],
)
def test_the_checkout_is_refused_with_what_to_do(tmp_path, change, message):
    work, _ = pushed_checkout(tmp_path / "r")
    if change == "edit":
        (work / "README.md").write_text("changed\n")
    elif change == "untracked":
        (work / "notes.txt").write_text("not committed\n")
    elif change == "unpushed":
        (work / "README.md").write_text("changed\n")
        git(work, "commit", "-q", "-am", "local only")
    elif change == "no remote":
        git(work, "branch", "--unset-upstream")
        git(work, "remote", "remove", "origin")
    else:
        git(work, "remote", "set-url", "origin", "https://user:ghp_secret@github.com/me/affinage.git")
    with pytest.raises(UserError) as err:
        pushed_source(work)
    assert message in err.value.message and "make image" in (err.value.hint or "")
    assert "ghp_secret" not in str(err.value)


def test_not_a_checkout(tmp_path):
    with pytest.raises(UserError, match="is not a git checkout"):
        pushed_source(tmp_path)


def test_an_archive_needs_no_remote(tmp_path):
    work, _ = pushed_checkout(tmp_path / "r")
    git(work, "remote", "remove", "origin")
    source = pushed_source(work, "/runpod-volume/affinage.tar.gz")
    assert source.archive == "/runpod-volume/affinage.tar.gz" and source.repo is None


def test_ssh_remotes_become_fetchable_urls():
    assert fetchable_url("git@github.com:me/affinage.git") == "https://github.com/me/affinage.git"
    assert fetchable_url("ssh://git@github.com:22/me/affinage.git") == "https://github.com/me/affinage.git"
    assert fetchable_url("https://github.com/me/affinage.git") == "https://github.com/me/affinage.git"
