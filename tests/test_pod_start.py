"""A pod start, simulated end to end on this CPU box, as a pod on axolotl's image runs it (launch/cloud/bootstrap.sh):

- the image: a Python 3.12 environment at <root>/workspace/axolotl-venv holding axolotl 0.20.0 and its own pins, one
  minor version away from the lock's 0.21.0 (tests/pod_image.py);
- the bootstrap fetches the planned commit of this checkout from a local git remote, checks the image (core/stack.py:
  versions in the supported range; DEVICE=cpu, so no GPU is asked for), sets up in image mode (only what the image
  lacks is installed, nothing it holds moves);
- the entrypoint trains the embedded recipe with the image's axolotl, merges, converts, pushes to the local Hub and
  terminates its pod through the local RunPod server, with fake HF, RunPod, OpenAI, Anthropic, Gemini and W&B keys
  in its environment: none of them in any file the pod wrote (the volume, the Hub's received files) or any output
  (tests/test_secrets.py's scanner).
"""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from core import manifest as run_manifest
from core.paths import REPO
from core.rundir import LATEST
from launch.cloud.source import BOOTSTRAP
from tests import pod_image
from tests.conftest import OFFLINE, SMOKE, git
from tests.hub_server import LocalHub
from tests.runpod_server import RunPodServer
from tests.test_secrets import FAKE, files_under, leaks

KEY = FAKE["RUNPOD_API_KEY"]
HF_TOKEN = FAKE["HF_TOKEN"]
POD = "podstart1"


def source_remote(root) -> tuple[str, str]:
    """(a bare remote holding this working tree as one commit, that commit)."""
    work, bare = root / "src", root / "src.git"
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO,
        capture_output=True,
        check=True,
    ).stdout.decode()
    for rel in filter(None, listed.split("\0")):
        if (REPO / rel).is_file():
            (work / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / rel, work / rel)
    git(root, "init", "-q", "--bare", str(bare))
    git(work, "init", "-q")
    git(work, "add", "-A")
    git(work, "commit", "-q", "-m", "the planned commit")
    git(work, "push", "-q", str(bare), "HEAD:main")
    return str(bare), git(work, "rev-parse", "HEAD")


@pytest.mark.slow
@pytest.mark.timeout(3600)  # builds an image environment and runs a pod's whole pipeline (minutes on a busy box)
def test_a_pod_on_an_image_with_another_axolotl_sets_up_trains_pushes_and_terminates(tmp_path):
    python = pod_image.build(tmp_path / "image")
    held = pod_image.versions(python)
    assert held["axolotl"] == "0.20.0" and held["torch"].startswith("2.14")
    assert not {"gotpl", "rouge-score"} & set(held)
    repo, commit = source_remote(tmp_path)
    volume = tmp_path / "runpod-volume"
    with RunPodServer() as server, LocalHub() as hub:
        server.state.pods[POD] = {"id": POD, "name": "affinage-x", "desiredStatus": "RUNNING", "volumeInGb": 50}
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("AFFINAGE_", "VIRTUAL_ENV"))},
            **OFFLINE,
            **FAKE,
            "PATH": f"{python.parent}{os.pathsep}{os.environ['PATH']}",
            "AFFINAGE_DIR": str(tmp_path / "opt" / "affinage"),
            "AFFINAGE_PYTHON": str(python),
            "AFFINAGE_REPO": repo,
            "AFFINAGE_COMMIT": commit,
            "DEVICE": "cpu",
            "RUNPOD_POD_ID": POD,
            "RUNPOD_API_KEY": KEY,
            "RUNPOD_API_BASE_URL": server.url,
            "RUNPOD_BACKOFF_S": "0",
            "OUTPUTS": str(volume / "outputs"),
            "RECIPE": "smollm2-135m-cpu",
            "ARGS": SMOKE,
            "PUSH_REPO": "me/pod-run",
            "QUANTS": "Q8_0",
            "ON_FINISH": "terminate",
            "HF_TOKEN": HF_TOKEN,
            "HF_ENDPOINT": hub.endpoint,
            "HF_HUB_DISABLE_XET": "1",
            "HF_HOME": str(volume / "hf"),
            "HF_HUB_OFFLINE": "0",
        }
        env.pop("PYTHONPATH", None)  # the pod's Python finds the code through the bootstrap, not this checkout
        proc = subprocess.run(["bash", str(BOOTSTRAP)], env=env, capture_output=True, text=True, timeout=2400)
        said = proc.stdout + proc.stderr
        assert proc.returncode == 0, said[-6000:]
        # the image was checked, then set up in image mode: the two missing packages added, nothing it held moved
        assert "image check: python 3.12" in said and "axolotl 0.20.0" in said and ": supported" in said
        assert "the image provides (kept): axolotl 0.20.0" in said
        assert "pip --dry-run: 2 missing package(s) to install, none of the image's replaced" in said
        after = pod_image.versions(python)
        assert {n: after[n] for n in held} == held and {"gotpl", "rouge-score"} <= set(after)
        # the entrypoint trained with the image's axolotl, then merged, converted, pushed, terminated its pod
        runs = volume / "outputs" / "runs" / "smollm2-135m-cpu"
        m = run_manifest.read(runs / (runs / LATEST).read_text().strip())
        assert m.status == "completed" and m.train.packages["axolotl"] == "0.20.0"
        assert m.push.repos["gguf"].repo_id == "me/pod-run-GGUF"
        assert set(hub.state.repos) == {"me/pod-run", "me/pod-run-merged", "me/pod-run-GGUF"}
        assert [t["args"]["podId"] for t in server.state.ops("podTerminate")] == [POD] and POD not in server.state.pods
        log = (volume / "outputs" / "pods" / f"{POD}.log").read_text()
        steps = [line.split(" -m ")[1].split()[0] for line in log.splitlines() if line.startswith(f"$ {python} -m ")]
        assert steps == ["launch.train", "tools.export.merge", "tools.export.gguf", "tools.export.push"]
        assert f"pod {POD}: terminate requested" in log
        received = tmp_path / "hub-received"
        received.mkdir()
        for i, data in enumerate(b for repo in hub.state.repos.values() for b in repo["files"].values()):
            (received / f"file{i}").write_bytes(data)
        sent = {f"runpod request {i}": r.get("query", "") for i, r in enumerate(server.state.requests)}
        written = files_under(volume, received)
        assert len(written) > 30 and any(p.name.endswith(".gguf") for p in written)
        assert leaks(written, {"stdout": proc.stdout, "stderr": proc.stderr, **sent}) == []
