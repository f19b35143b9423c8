"""One small interface for the clouds that train our runs, the way axolotl keeps its providers behind a base class
(axolotl.cli.cloud.base.Cloud): a cloud creates a machine from a request by name (and finds it by that name when
the reply to a create was lost), reads it, stops it where it can, deletes it, and says where its log is. RunPod has
two kinds behind it: single pods (the runpod SDK, GraphQL) and Instant Clusters (REST API v2, no stop: delete is
the only way to end one). `make runpod-*` speak only this interface (launch/cloud/runpod/commands.py)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar

from pydantic import BaseModel


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
