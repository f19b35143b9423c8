"""Single RunPod pods behind the cloud interface (launch/cloud/base.py), through the runpod SDK's calls with retries
(launch/cloud/runpod/api.py). A pod can stop (GPU billing ends, its volume stays) or terminate."""

from __future__ import annotations

from typing import Any

from launch.cloud.base import Cloud, Machine
from launch.cloud.runpod import api
from launch.cloud.runpod.spec import PodRequest

ENDED = ("EXITED", "TERMINATED", "DEAD")  # desiredStatus of a pod that will not run again by itself


def as_machine(pod: dict[str, Any]) -> Machine:
    ports = (pod.get("runtime") or {}).get("ports") or []
    ssh = next((p for p in ports if p.get("privatePort") == 22 and p.get("isIpPublic")), None)
    return Machine(
        id=pod["id"],
        name=pod.get("name"),
        kind="pod",
        status=pod.get("desiredStatus"),
        gpus=f"{pod.get('gpuCount')} x {(pod.get('machine') or {}).get('gpuDisplayName', '?')}",
        cost_per_hr=float(pod["costPerHr"]) if pod.get("costPerHr") is not None else None,
        uptime_s=pod.get("uptimeSeconds"),
        volume_gb=pod.get("volumeInGb"),
        ssh=(ssh["ip"], int(ssh["publicPort"])) if ssh else None,
        log_id=pod["id"],
        ended=pod.get("desiredStatus") in ENDED,
        raw=pod,
    )


class RunPodPods(Cloud):
    kind = "pod"
    can_stop = True

    def __init__(self, acct: api.Account):
        self.acct = acct

    def request_text(self, request: PodRequest) -> str:
        """The mutation the SDK will send, from the SDK's own generator."""
        from runpod.api.mutations.pods import generate_pod_deployment_mutation

        # the defaults create_pod passes for what we leave unset (runpod 1.10.0)
        kw = {"min_vcpu_count": 1, "min_memory_in_gb": 1, "docker_args": "", **request.sdk_kwargs()}
        return generate_pod_deployment_mutation(**kw).strip()

    def find_named(self, name: str) -> Machine | None:
        pod = api.find_pod_named(self.acct, name)
        return as_machine(pod) if pod else None

    def create(self, request: PodRequest) -> Machine:
        return as_machine(api.create_pod(self.acct, request.sdk_kwargs()))

    def get(self, machine_id: str) -> Machine | None:
        pod = api.get_pod(self.acct, machine_id)
        return as_machine(pod) if pod else None

    def stop(self, machine_id: str) -> None:
        api.stop_pod(self.acct, machine_id)

    def delete(self, machine_id: str) -> None:
        api.terminate_pod(self.acct, machine_id)
