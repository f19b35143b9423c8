"""The one place the environment is read: every variable a command understands, declared by concern (launch,
cloud, export and serving, evaluation, studies, data, bench, and what every command shares) as pydantic-settings
models, read and validated once into a typed, frozen `Settings`. A bad value is the same clear error (naming the
variable, core/env_values.py) in every command.

Settings are read once per command, at its entry point: `core.cli.main` loads them and hands them to the
command's body, which passes them (or what it needs of them: OUTPUTS as `s.outputs`, AFFINAGE_CACHE as `s.cache`)
down; library code never calls `load()` (tests/test_settings_flow.py keeps it so). The other entry points are
processes that do not start from a command line of ours: a pod's entrypoint, axolotl's plugin hooks, TRL's
reward calls.
Credentials are `SecretStr`: they never show up in a repr, a log line or a manifest.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from contextvars import ContextVar
from pathlib import Path
from typing import Any

from pydantic import PrivateAttr
from pydantic_settings import BaseSettings, EnvSettingsSource, SettingsConfigDict

from core.env_values import Bounds, Choice, Number, Secret, Switch, Text, Whole, parse_float, parse_int
from core.errors import UserError
from core.paths import REPO

DEFAULT_RECIPE = "smollm2-135m-cpu"  # the embedded default: `make train` on a fresh clone, CPU, offline
STRATEGIES = ("auto", "none", "ddp", "zero1", "zero2", "zero3", "zero3-offload", "fsdp")
DEVICES = ("cpu", "gpu")
Port = Whole(1, 65535)
_ENV: ContextVar[Mapping[str, str]] = ContextVar("affinage_env", default=os.environ)  # load() sets it


class _Environment(EnvSettingsSource):
    """pydantic-settings' environment source over the mapping load() was given (os.environ by default)."""

    def _load_env_vars(self) -> Mapping[str, str | None]:
        return dict(_ENV.get())


class _Section(BaseSettings):
    # every field is read from the variable of its name in upper case (RECIPE -> recipe), exactly
    model_config = SettingsConfigDict(frozen=True, case_sensitive=True, alias_generator=str.upper, extra="ignore")

    @classmethod
    def settings_customise_sources(
        cls, settings_cls, init_settings, env_settings, dotenv_settings, file_secret_settings
    ):
        return (init_settings, _Environment(settings_cls))


class CommonSettings(_Section):
    """What every command shares: where things go, the Hub, credentials."""

    outputs: Path = REPO / "outputs"  # OUTPUTS; the rest of the paths: load()
    cache: Path = Path("~/.cache/affinage")  # AFFINAGE_CACHE
    hf_home: Path = Path("~/.cache/huggingface")
    gpu_table: Path | None = None
    hf_endpoint: Text = None
    hf_hub_offline: Switch(False) = False
    hf_token: Secret = None


class LaunchSettings(_Section):
    """What to train and how its processes are laid out (launch/, make plan)."""

    recipe: Text = None
    run: Text = None
    args: Text = None
    force: Switch(False) = False
    resume: Switch(True) = True
    from_run: Text = None
    device: Choice(DEVICES) = None
    strategy: Choice(STRATEGIES, "unknown distributed strategy") = None
    gpu: Text = None
    gpus: Whole(0) = None
    price_per_hour: Number(0.0) = None
    nodes: Whole(1) = None
    num_nodes: Whole(1) = None
    node_rank: Whole(0) = None
    master_addr: Text = None
    master_port: Port = None
    primary_addr: Text = None
    primary_port: Port = None
    num_trainers: Whole(1) = None
    world_size: Whole(1) = None
    rank: Whole(0) = None
    cpu_procs: Whole(1) = None
    nccl_socket_ifname: Text = None
    runpod_cluster: bool = False  # RunPod's Instant Cluster variables are set: load()


class CloudSettings(_Section):
    """Pods and clusters (launch/cloud): the provider, the machine, its image, its end."""

    cloud: Text = None  # the provider: launch/cloud/registry.py
    cloud_type: Text = None  # RunPod: SECURE | COMMUNITY | ALL
    image: Text = None
    network_volume: Text = None
    volume_gb: Whole(1) = None
    pod: Text = None
    push_repo: Text = None
    pod_secrets: Text = None
    public_key: Text = None
    template_name: Text = None
    on_finish: Text = None
    runpod_pod_id: Text = None
    runpod_backoff_s: Number(0.0) = None
    runpod_rest_url: Text = None  # RunPod's REST API v2 (clusters); tests point it at a local server
    dry_run: Switch(False) = False
    follow: Switch(False) = False
    source_checkout: Text = None  # the checkout whose pushed commit a pod bootstraps (default: this one)
    source_archive: Text = None  # a `git archive` of that commit on the volume, instead of the git remote
    cluster_name: Text = None  # set on the pods of a cluster cloud-up made: whom ON_FINISH deletes
    data_center: Text = None
    runpod_api_key: Secret = None


class ExportSettings(_Section):
    """Export, publish and serve (tools/): GGUF types, the Hub repo, chat/serve sampling (SYSTEM=none: none)."""

    quants: Text = None
    outtype: Text = None
    gguf: Text = None
    repo: Text = None
    private: Switch(True) = True
    port: Port = None
    system: Text = None
    temperature: Number(0.0, 2.0) = None  # what OpenAI-compatible judges accept
    top_p: Number(0.0, 1.0) = None  # a probability
    max_new_tokens: Whole(1) = None


class EvalSettings(_Section):
    """Evaluation, judging and preference pairs (eval/)."""

    backends: Text = None
    limit: Whole(0) = None
    judges: Text = None
    judge_url: Text = None
    judge_gguf: Text = None
    suite: Text = None
    concurrency: Whole(1) = None
    seed: Whole(0) = None
    max_cost: Number(0.0) = None
    baseline: Text = None
    judge_retries: Whole(0) = None
    judge_timeout_s: Number(0.001) = None
    judge_min_consistency: Number(0.0, 1.0) = None
    files: Text = None
    agree: Text = None
    gen_backend: Text = None  # generation for judging: auto (default), hf or gguf
    gen_batch: Whole(1) = None


class StudySettings(_Section):
    """Studies (eval/study): the study file, RUNPOD=1 for one pod per run, the results repo, and on a pod the run
    it works on (its key and its job, base64 JSON: pod env values cannot hold quotes)."""

    study: Text = None
    runpod: Switch(False) = False
    study_repo: Text = None
    study_run: Text = None
    study_spec: Text = None
    study_poll_s: Number(0.0) = None


class DataSettings(_Section):
    """The data tools and make new."""

    data: Text = None
    format: Text = None
    to: Text = None
    out: Text = None
    val: Whole(1) = None
    split: Text = None
    method: Text = None
    template: Text = None
    heldout: Text = None
    personas: Text = None
    generator: Text = None
    endpoint: Text = None
    model: Text = None


class BenchSettings(_Section):
    """make bench and make gpu-check."""

    bench_quick: Switch(False) = False
    repeats: Whole(1) = None
    bench_steps: Whole(1) = None
    wheels: Text = None


class Settings(
    CommonSettings,
    LaunchSettings,
    CloudSettings,
    ExportSettings,
    EvalSettings,
    StudySettings,
    DataSettings,
    BenchSettings,
):
    """Everything the commands read from the environment, typed: every concern's variables. Unset text is None."""

    _env: Mapping[str, str] = PrivateAttr(default_factory=dict)

    @property
    def env(self) -> Mapping[str, str]:
        return self._env

    @property
    def recipe_or_default(self) -> str:
        return self.recipe or DEFAULT_RECIPE

    def secret(self, name: str) -> str | None:
        """A credential named at run time (a judge's key_env, a POD_SECRETS name); None when unset or empty."""
        value = (self.env.get(name) or "").strip()
        return value or None

    def raw(self, name: str) -> str | None:
        """A variable passed through as is (pod env forwarding); None when unset or empty."""
        value = self.env.get(name)
        return value if value else None


def _bounded(whole: bool) -> tuple[tuple[Any, ...], ...]:
    out = []
    for name, field in Settings.model_fields.items():
        bounds = next((m for m in field.metadata if isinstance(m, Bounds)), None)
        if bounds is not None and bounds.whole == whole:
            out.append((name, name.upper(), bounds.minimum, *(() if bounds.maximum is None else (bounds.maximum,))))
    return tuple(out)


# (field, variable, minimum[, maximum]) of every whole number and number, read from the declarations above
INTS, FLOATS = _bounded(True), _bounded(False)


def load[S: _Section](env: Mapping[str, str] | None = None, section: type[S] = Settings) -> S:  # type: ignore[assignment]
    """Parse and validate the environment (os.environ by default) into Settings, or one concern's section.
    Raises UserError naming the variable."""
    env = dict(os.environ if env is None else env)
    default_cache = Path(env.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "affinage"
    paths = {
        "outputs": Path(env.get("OUTPUTS") or REPO / "outputs").expanduser().resolve(),
        "cache": Path(env.get("AFFINAGE_CACHE") or default_cache).expanduser().resolve(),
        "hf_home": Path(env.get("HF_HOME") or Path.home() / ".cache" / "huggingface").expanduser(),
        "gpu_table": Path(env["GPU_TABLE"]).expanduser() if env.get("GPU_TABLE") else None,
    }
    derived = {"runpod_cluster": "NUM_TRAINERS" in env or "PRIMARY_ADDR" in env}
    init = {k.upper(): v for k, v in {**paths, **derived}.items() if k in section.model_fields}  # by alias
    token = _ENV.set(env)
    try:
        loaded = section(**init)
    finally:
        _ENV.reset(token)
    if isinstance(loaded, Settings):
        loaded._env = env
    return loaded


def flag_type(variable: str):
    """argparse's type= for a command-line flag that stands for an environment variable (--top-p for TOP_P): the
    same rule, the same words, before any work (argparse prints it as one error, exit status 2)."""
    import argparse

    rules = {var: (parse_int, bounds) for _, var, *bounds in INTS}
    rules.update({var: (parse_float, bounds) for _, var, *bounds in FLOATS})
    parse, bounds = rules[variable]

    def convert(raw: str):
        try:
            return parse(variable, raw, *bounds)
        except UserError as exc:
            raise argparse.ArgumentTypeError(exc.message) from None

    convert.__name__ = variable  # argparse names the type in its messages
    return convert
