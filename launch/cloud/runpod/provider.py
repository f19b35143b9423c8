"""RunPod as a provider (launch/cloud/base.py Provider; registered as `runpod` in launch/cloud/registry.py): the
commands of launch/cloud/runpod/commands.py, single pods for a study's jobs (the request `make cloud-up` builds,
launch/cloud/runpod/request.py), and what a job does on its pod when it is done (launch/cloud/runpod/entrypoint.py)."""

from __future__ import annotations

from typing import Any

from launch.cloud.base import Cloud, Provider, StudyMachine


class RunPod(Provider):
    name = "runpod"
    verbs = ("up", "status", "logs", "down", "template")

    def command(self, verb: str, s: Any, dry_run: bool) -> int:
        from launch.cloud.runpod import commands

        if verb == "up":
            return commands.up(s, dry_run)
        return {"status": commands.status, "logs": commands.logs, "down": commands.down, "template": commands.template}[
            verb
        ](s)

    def machines(self, s: Any) -> Cloud:
        from launch.cloud.runpod.api import Account
        from launch.cloud.runpod.pods import RunPodPods

        return RunPodPods(Account.of(s))

    def study_machine(
        self,
        recipe: str,
        s: Any,
        *,
        args: str,
        gpu: str | None,
        gpus: int | None,
        secrets: list[str],
        env: dict,
        name: str,
    ) -> StudyMachine:
        from launch.cloud.runpod.request import build_pod

        built = build_pod(
            recipe,
            s,
            args=args,
            gpu=gpu,
            gpus=gpus,
            on_finish="terminate",  # the results live on the Hub, not on the pod's volume
            secrets=secrets,
            extra_env=env,
            name=name,
            push=False,
        )
        plan = built.plan
        rate = plan.gpu["usd_per_hour"] * plan.topology.world_size
        return StudyMachine(request=built.request, name=name, usd=plan.usd, hours=plan.hours, usd_per_hour=rate)

    def machine_name(self, label: str) -> str:
        from launch.cloud.runpod.spec import load_project, pod_name

        return pod_name(load_project().project, label)

    def outputs_on_machine(self) -> str:
        from launch.cloud.runpod.spec import load_project

        return f"{load_project().project.volume_mount_path}/outputs"

    def machine_id(self, s: Any) -> str | None:
        return s.runpod_pod_id

    def end_machine(self, s: Any, tee: Any, on_finish: str, machine_id: str | None) -> None:
        from launch.cloud.runpod.api import Account
        from launch.cloud.runpod.entrypoint import finish

        finish(tee, on_finish, machine_id, Account.of(s))


PROVIDER = RunPod()
