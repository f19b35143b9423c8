"""Clouds behind one interface: CLOUD=<name> picks a provider from launch/cloud/registry.py, `make cloud-*` and
the `runpod-*` aliases are one CLI, an unknown name is one clear error, and a provider registered from outside
(here: this file's) is reached by the same commands as RunPod is."""

from __future__ import annotations

from typing import Any

import pytest

from core.errors import UserError
from core.paths import REPO
from launch.cloud import commands, registry
from launch.cloud.base import Cloud, Machine, Provider, StudyMachine

CALLS: list[tuple[str, bool]] = []


class Nimbus(Provider):
    name = "nimbus"
    verbs = ("up", "status", "logs", "down")

    def command(self, verb: str, s: Any, dry_run: bool) -> int:
        CALLS.append((verb, dry_run))
        return 0

    def machines(self, s: Any) -> Cloud:
        raise NotImplementedError

    def study_machine(self, recipe, s, *, args, gpu, gpus, secrets, env, name) -> StudyMachine:
        return StudyMachine(request={"recipe": recipe, "env": env}, name=name, usd=1.0, hours=1.0, usd_per_hour=2.0)

    def machine_name(self, label: str) -> str:
        return f"nimbus-{label}"

    def outputs_on_machine(self) -> str:
        return "/data/outputs"

    def machine_id(self, s: Any) -> str | None:
        return None

    def end_machine(self, s: Any, tee: Any, on_finish: str, machine_id: str | None) -> None:
        tee.say("nothing to end")


PROVIDER = Nimbus()


@pytest.fixture
def nimbus(monkeypatch):
    monkeypatch.setitem(registry.PROVIDERS, "nimbus", __name__)
    CALLS.clear()
    yield


def test_runpod_is_the_default_and_registered_by_name():
    assert registry.get(None).name == "runpod" == registry.get("RunPod").name
    assert set(registry.get("runpod").verbs) >= {"up", "status", "logs", "down", "template"}


def test_an_unknown_cloud_is_one_error_naming_the_known_ones():
    with pytest.raises(UserError) as err:
        registry.get("SECURE")  # what CLOUD meant before it named the provider
    assert "unknown cloud 'secure' (known: runpod)" in str(err.value) and err.value.where.key == "CLOUD"
    assert "CLOUD_TYPE" in (err.value.hint or "")


def test_a_registered_provider_answers_the_cloud_commands(nimbus, monkeypatch):
    monkeypatch.setenv("CLOUD", "nimbus")
    monkeypatch.delenv("DRY_RUN", raising=False)
    assert commands.main(["up", "--dry-run"]) == 0 and commands.main(["down"]) == 0
    assert CALLS == [("up", True), ("down", False)]
    assert commands.main(["template"]) == 2  # a verb the provider does not have: refused by name
    assert CALLS == [("up", True), ("down", False)]


def test_the_runpod_aliases_refuse_a_cloud_that_says_otherwise(monkeypatch, capsys):
    monkeypatch.setenv("CLOUD", "COMMUNITY")  # the old docs' make runpod-up CLOUD=COMMUNITY: never a SECURE pod
    assert commands.main(["up", "--cloud", "runpod", "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert "CLOUD=COMMUNITY conflicts with make runpod-up" in err and "CLOUD_TYPE" in err


def test_a_study_plans_its_machines_through_the_provider(nimbus, monkeypatch):
    from core import settings
    from eval.study import pods
    from eval.study.job import Job
    from eval.study.spec import StudyRun

    study = type("S", (), {"name": "s1", "budget": type("B", (), {"gpu": None, "gpus": None})()})()
    run = StudyRun(key="r1", label="r1", recipe="smollm2-135m-cpu", overrides={}, config="c", where="runs[0]")
    job = Job(study="s1", key="r1", recipe="smollm2-135m-cpu", repo="me/results")
    planned, usd, hours = pods.request(study, run, job, settings.load({}), registry.get("nimbus"))
    assert planned.name == "nimbus-s1-r1" and planned.request["env"]["CLOUD"] == "nimbus"
    assert Job.decode(planned.request["env"]["STUDY_SPEC"]) == job  # the machine gets the run's job
    assert usd == 1.0 + pods.POD_OVERHEAD_H * 2.0 and hours == 1.0 + pods.POD_OVERHEAD_H


def test_the_cloud_targets_and_their_runpod_aliases_are_one_cli():
    makefile = (REPO / "Makefile").read_text()
    for verb in ("up", "status", "logs", "down"):
        assert f"cloud-{verb}: setup" in makefile and f"runpod-{verb}: setup" in makefile
        assert f"\t@$(PY) -m launch.cloud.commands {verb}\n" in makefile
        assert f"\t@$(PY) -m launch.cloud.commands {verb} --cloud runpod\n" in makefile
    assert "launch.cloud.runpod.commands" not in makefile


def test_studies_reach_a_cloud_only_through_the_interface():
    for path in (REPO / "eval" / "study").glob("*.py"):
        text = path.read_text()
        assert "launch.cloud.runpod" not in text and "runpod import" not in text, path.name
    assert Machine(id="x", kind="pod").ended is False
