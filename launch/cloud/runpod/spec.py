"""What a pod is: runpod.toml (RunPod's project file: image, GPU types, volume, ports, env) plus the plan
(GPU type and count, disks sized from the estimate, cost). Values are checked here because runpod 1.10.0
pastes them into its GraphQL text unescaped: a quote or newline in an env value would break the request
or change it."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from core.errors import UserError, Where
from core.paths import REPO
from core.settings import Settings

PROJECT_FILE = REPO / "runpod.toml"
# Names whose values are credentials: never sent as pod env values, never printed. A pod gets them as
# RunPod secret references ({{ RUNPOD_SECRET_<name> }}), which RunPod resolves inside the pod.
SECRET_NAMES = (
    "HF_TOKEN",
    "HUGGING_FACE_HUB_TOKEN",
    "RUNPOD_API_KEY",
    "OPENAI_API_KEY",
    "ANTHROPIC_API_KEY",
    "GEMINI_API_KEY",
    "GOOGLE_API_KEY",
    "WANDB_API_KEY",
)
SECRET_REF = "{{{{ RUNPOD_SECRET_{name} }}}}"
# Variables the pod passes on to the entrypoint (launch/cloud/runpod/entrypoint.py reads them).
FORWARDED = ("ARGS", "NODES", "PUSH_REPO", "PRIVATE", "QUANTS", "ON_FINISH", "STRATEGY", "PUBLIC_KEY", "FLASH_ATTN")
_UNSAFE = re.compile(r'["\\\n\r]')
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_SECRET_SHAPES = re.compile(r"\b(hf_[A-Za-z0-9]{20,}|sk-[A-Za-z0-9_-]{20,}|rpa_[A-Za-z0-9]{20,})")


class Project(BaseModel):
    """runpod.toml's [project] table (the keys RunPod's project file defines that a pod needs)."""

    model_config = ConfigDict(extra="forbid")
    uuid: str | None = None
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$")
    base_image: str = Field(min_length=3)
    gpu_types: list[str] = Field(min_length=1)
    gpu_count: int = Field(ge=1, le=8)
    volume_mount_path: str = Field(pattern=r"^/")
    ports: str
    container_disk_size_gb: int = Field(ge=20)
    env_vars: dict[str, str] = {}

    @property
    def port_list(self) -> list[str]:
        return [p.strip() for p in self.ports.split(",") if p.strip()]


class ProjectFile(BaseModel):
    model_config = ConfigDict(extra="allow")  # [template] and [runtime] belong to runpodctl, not to us
    title: str | None = None
    project: Project
    runtime: dict[str, Any] = {}


def load_project(path: Path = PROJECT_FILE) -> ProjectFile:
    try:
        raw = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise UserError("RunPod project file not found", Where(path)) from None
    except tomllib.TOMLDecodeError as exc:
        raise UserError(f"not valid TOML: {exc}", Where(path)) from None
    try:
        project = ProjectFile.model_validate(raw)
    except ValidationError as exc:
        err = exc.errors()[0]
        key = ".".join(str(p) for p in err["loc"])
        raise UserError(err["msg"], Where(path, key=key)) from None
    for name, value in project.project.env_vars.items():
        check_env_value(name, value, Where(path, key=f"project.env_vars.{name}"))
    return project


def check_env_value(name: str, value: str, where: Where | None = None) -> None:
    """Refuse what the SDK cannot send intact, and any credential passed by value."""
    if not _NAME.match(name):
        raise UserError(f"'{name}' is not a valid environment variable name", where)
    if name in SECRET_NAMES and value != SECRET_REF.format(name=name):
        raise UserError(
            f"{name} must not be sent to a pod by value (pod env is visible in the RunPod console and API)",
            where,
            f"store it as a RunPod secret named {name}; the pod then gets {SECRET_REF.format(name=name)}",
        )
    if _UNSAFE.search(value):
        raise UserError(
            f"the value of {name} contains a quote, backslash or line break, which the RunPod SDK "
            "would paste into its request unescaped",
            where,
            "remove those characters",
        )
    if _SECRET_SHAPES.search(value):
        raise UserError(f"the value of {name} looks like an access token; tokens go in RunPod secrets, not env", where)


class PodRequest(BaseModel):
    """One pod, in the SDK's create_pod terms."""

    model_config = ConfigDict(extra="forbid")
    name: str
    image_name: str
    gpu_type_id: str
    gpu_count: int = Field(ge=1)
    cloud_type: str = "SECURE"
    container_disk_in_gb: int
    volume_in_gb: int
    volume_mount_path: str
    ports: str
    env: dict[str, str]
    network_volume_id: str | None = None
    docker_args: str = ""  # the bootstrap on axolotl's image; empty: the image's own CMD (a pre-built IMAGE=)

    @model_validator(mode="after")
    def _a_volume_holds_the_outputs(self) -> PodRequest:
        """Without a network volume the pod's own volume holds the outputs: never a request for 0 GB (a model
        whose size is not known here has no volume size)."""
        if not self.network_volume_id and self.volume_in_gb < 1:
            raise UserError(
                f"the pod would get a {self.volume_in_gb} GB volume for its outputs",
                Where(key="VOLUME_GB"),
                "give VOLUME_GB=<GB>, or NETWORK_VOLUME=<id>; make plan sizes it once the model's facts are here",
            )
        return self

    def sdk_kwargs(self) -> dict[str, Any]:
        kwargs = self.model_dump()
        if self.network_volume_id:
            kwargs["volume_in_gb"] = 0  # the network volume holds outputs; no pod volume to pay for
        else:
            kwargs.pop("network_volume_id")
        return kwargs


def secret_refs(s: Settings) -> dict[str, str]:
    """References for the credentials the pod needs: HF_TOKEN when it pushes. Only the name travels."""
    wanted = ["HF_TOKEN"] if s.push_repo else []
    wanted += [n for n in (s.pod_secrets or "").split(",") if n.strip()]
    refs = {}
    for name in (n.strip() for n in wanted):
        if not _NAME.match(name):
            raise UserError(f"POD_SECRETS names '{name}', which is not a variable name", Where(key="POD_SECRETS"))
        refs[name] = SECRET_REF.format(name=name)
    return refs


def pod_env(project: Project, recipe: str, s: Settings) -> dict[str, str]:
    """The pod's environment: the project's defaults, the recipe, the forwarded settings, secret refs."""
    out = dict(project.env_vars)
    out["RECIPE"] = recipe
    for name in FORWARDED:
        value = s.raw(name)
        if value:
            out[name] = value
    out.update(secret_refs(s))
    for name, value in out.items():
        check_env_value(name, value, Where(key=name))
    return out


def pod_name(project: Project, recipe: str, run: str | None = None) -> str:
    """Per run, not per recipe: `<project>-<recipe>-<UTC time>-<4 hex>`, so the name that finds a pod whose create
    reply was lost can only match this run's pod, never an older pod of the same recipe (a stopped one stays)."""
    if run is None:
        import secrets
        from datetime import UTC, datetime

        run = datetime.now(UTC).strftime("%Y%m%d-%H%M%S") + "-" + secrets.token_hex(2)
    return f"{f'{project.name}-{recipe}'[:40]}-{run}"
