"""One small interface for the clouds that train our runs, the way axolotl keeps its providers behind a base class
(axolotl.cli.cloud.base.Cloud): a cloud creates a machine from a request by name (and finds it by that name when
the reply to a create was lost), reads it, stops it where it can, deletes it, and says where its log is. Providers
(launch/cloud/registry.py, CLOUD=<name>) give the commands and studies their clouds (Provider, below). RunPod has
two kinds behind it: single pods (the runpod SDK, GraphQL) and Instant Clusters (REST API v2, no stop: delete is
the only way to end one). `make runpod-*` speak only this interface (launch/cloud/runpod/commands.py)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar

from pydantic import BaseModel

from core.errors import UserError, Where

ON_FINISH = ("stop", "terminate", "none")  # what a machine does when its job is done


def finish_mode(value: str | None) -> str:
    """ON_FINISH, checked (default stop: GPU billing ends, the volume stays)."""
    mode = (value or "stop").strip() or "stop"
    if mode not in ON_FINISH:
        raise UserError(f"ON_FINISH must be one of {', '.join(ON_FINISH)}, not '{mode}'", Where(key="ON_FINISH"))
    return mode


class Machine(BaseModel):
    """What a cloud reports about one machine (a pod, or a cluster of pods), in the terms the commands print."""

    id: str
    name: str | None = None
    kind: str
    status: str | None = None
    gpus: str | None = None  # "2 x 8 x NVIDIA H100 80GB HBM3"
    cost_per_hr: float | None = None
    uptime_s: float | None = None
    volume_gb: int | None = None  # outputs on storage that dies with the machine (0: a network volume)
    ssh: tuple[str, int] | None = None  # where `make runpod-logs` tails the log (host, port)
    log_id: str | None = None  # the pod whose log file that is
    ended: bool = False  # it exited or was terminated: it will not run again by itself
    raw: dict[str, Any] = {}


class Cloud(ABC):
    kind: ClassVar[str]
    can_stop: ClassVar[bool]  # False: delete is the only stop (RunPod clusters)

    @abstractmethod
    def request_text(self, request: Any) -> str:
        """The request exactly as it would be sent (what DRY_RUN=1 prints)."""

    @abstractmethod
    def create(self, request: Any) -> Machine:
        """Create it; a create whose reply was lost is found by the request's (per-run) name, never made twice."""

    @abstractmethod
    def find_named(self, name: str) -> Machine | None:
        """The machine of exactly this name, or None."""

    @abstractmethod
    def get(self, machine_id: str) -> Machine | None:
        """None when it no longer exists."""

    @abstractmethod
    def stop(self, machine_id: str) -> None:
        """End the GPU billing, keeping its storage (only where can_stop)."""

    @abstractmethod
    def delete(self, machine_id: str) -> None:
        """End it for good, with its own storage."""


class StudyMachine(BaseModel):
    """One study job's machine as a provider plans it: the request its Cloud creates, its name, the estimate."""

    model_config = {"arbitrary_types_allowed": True}
    request: Any
    name: str
    usd: float  # the plan's estimate of the training
    hours: float
    usd_per_hour: float  # the machine's price (what the job's time beyond training costs)


class Provider(ABC):
    """A cloud provider as the commands (`make cloud-up|cloud-status|cloud-logs|cloud-down CLOUD=<name>`) and
    studies (`make study RUNPOD=1`) use it. A provider is one package under launch/cloud/ plus one line in
    launch/cloud/registry.py; nothing outside its package names the provider."""

    name: ClassVar[str]
    verbs: ClassVar[tuple[str, ...]] = ("up", "status", "logs", "down")  # a provider may add its own (template)

    @abstractmethod
    def command(self, verb: str, s: Any, dry_run: bool) -> int:
        """Run `make cloud-<verb>` (one of `verbs`) with these settings; the exit status."""

    @abstractmethod
    def machines(self, s: Any) -> Cloud:
        """The single machines a study's jobs run on."""

    @abstractmethod
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
        """A machine that runs one study job (env holds the job) and ends itself when done, sized by the plan."""

    @abstractmethod
    def machine_name(self, label: str) -> str:
        """The per-run machine name for a label (a study's run): what finds it when a create's reply was lost."""

    @abstractmethod
    def outputs_on_machine(self) -> str:
        """Where outputs live on one of its machines (the volume that outlives the job)."""

    @abstractmethod
    def machine_id(self, s: Any) -> str | None:
        """On one of its machines: this machine's id (None elsewhere)."""

    @abstractmethod
    def end_machine(self, s: Any, tee: Any, on_finish: str, machine_id: str | None) -> None:
        """On one of its machines, when the job is done: stop or terminate it as on_finish says, saying what
        happened in the job's log (a launch.cloud.tee.Tee); never raises (a job's results are already safe)."""
