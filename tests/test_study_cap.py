"""MAX_COST is a cap, not a launch gate only: `make study RUNPOD=1` reads each live pod's spend from RunPod's own
price and uptime (the local RunPod server's pods advance their uptime by one step per read, so no test waits on
a clock) and terminates the live pods once the study's spend reaches MAX_COST, and not a poll before; the spend
is recorded per pod and the report shows it against the cap."""

from __future__ import annotations

import json

from core import settings
from eval.study import report, state
from tests.conftest import run_cli
from tests.hub_server import LocalHub
from tests.runpod_server import RunPodServer

TOKEN = "hf_fake-token-for-tests-only-0123-4567"
KEY = "rp-fake-key-for-tests-only-0000"
STUDY = """name: capped
runs:
  - {name: one, recipe: smollm2-135m-cpu}
  - {name: two, recipe: smollm2-135m-cpu, overrides: {lora_r: 4, lora_alpha: 8}}
overrides: {max_steps: 2}
budget: {max_cost: 1.25, gpu: L4}
hub_repo: me/capped-study
"""
EARLIER = {"id": "old1", "name": "x", "estimate_usd": 0.3, "estimate_h": 0.3, "spent_usd": 0.4, "ended": True}


def test_live_pods_are_terminated_when_the_study_spend_reaches_max_cost(tmp_path, outputs):
    """An earlier pod spent $0.40; both runs' pods fit the launch gate ($1/h plan estimates). RunPod reports
    $3.60/h and 100 s more uptime per read: $0.10 per pod per poll. After 4 polls the study has spent
    0.40 + 2 x 0.40 = $1.20 < $1.25: nothing is stopped; after the 5th, $1.40: both pods are terminated."""
    study_file = tmp_path / "capped.yaml"
    study_file.write_text(STUDY)
    _, _, _, paths = report.load(str(study_file), settings.load())
    state.write_state(paths, {"runs": {"one": {"pods": [EARLIER], "status": "failed"}}})
    with RunPodServer() as rp, LocalHub() as hub:
        rp.state.pod_uptime_s, rp.state.pod_cost_per_hr, rp.state.pod_uptime_step_s = 0, 3.6, 100
        rp.state.pod_reads_to_exit = 30  # a pod never stopped at the cap ends by itself (the test ends)
        env = {
            "OUTPUTS": str(outputs),
            "RUNPOD": "1",
            "PRICE_PER_HOUR": "1",
            "STUDY_POLL_S": "0",
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
        proc = run_cli("eval.study.run", str(study_file), env=env, timeout=600)
        said = proc.stdout + proc.stderr
        requests = list(rp.state.requests)
    assert proc.returncode == 2 and "Traceback" not in said, said[-3000:]
    created = [r for r in requests if r["field"] == "podFindAndDeployOnDemand"]
    assert len(created) == 2, said[-3000:]
    st = state.read_state(paths)
    for key in ("one", "two"):
        assert f"{key}: stopped at MAX_COST: the study spent $1.40 of $1.25" in said, said[-3000:]
        pod = st["runs"][key]["pods"][-1]
        reads = [i for i, r in enumerate(requests) if r["field"] == "pod" and r["args"]["podId"] == pod["id"]]
        stops = [i for i, r in enumerate(requests) if r["field"] in ("podTerminate", "podStop")]
        stops = [i for i in stops if requests[i]["args"]["podId"] == pod["id"]]
        assert len(stops) == 1 and len(reads) == 5 and reads[-1] < stops[0], (key, len(reads), stops)
        assert pod["ended"] and pod["spent_usd"] == 0.5 and pod["uptime_s"] == 500 and pod["price_per_hr"] == 3.6
        assert st["runs"][key]["status"] == "budget stop"
    assert st["runs"]["one"]["pods"][0] == EARLIER  # what was spent before stays recorded
    assert st["budget"] == {"max_cost": 1.25, "poll_s": 0.0}
    text = (paths.report / "report.md").read_text()
    assert "0 of 2 runs finished; 2 budget stops." in text
    assert "RunPod spend: $1.40 of MAX_COST $1.25 (cap reached: live pods were terminated), over 3 pod(s)" in text
    data = json.loads((paths.report / "report.json").read_text())
    assert data["budget"]["spent_usd"] == 1.4 and data["budget"]["max_cost"] == 1.25


def test_spend_is_runpods_price_times_uptime_and_survives_a_restart():
    """RunPod's uptime starts again at 0 when a pod restarts: what the earlier start spent is kept, and a pod that
    is gone keeps what was last read."""
    from eval.study.pods import record_spend
    from launch.cloud.runpod.pods import as_machine

    def pod(uptime: int) -> dict:
        return {"id": "p1", "uptimeSeconds": uptime, "costPerHr": 3.6, "desiredStatus": "RUNNING"}

    rec = {"spent_usd": 0.0}
    record_spend(as_machine(pod(600)), rec)
    assert rec["spent_usd"] == 0.6 and rec["uptime_s"] == 600 and rec["price_per_hr"] == 3.6
    record_spend(as_machine(pod(100)), rec)  # restarted
    assert rec["spent_usd"] == 0.7
    record_spend(None, rec)
    assert rec["spent_usd"] == 0.7
