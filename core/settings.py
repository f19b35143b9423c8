"""The one place the environment is read: every variable a command understands, parsed and validated once
into a typed, frozen `Settings`. A bad value is the same clear error (naming the variable) in every command.

Entry points call `load()` inside `core.cli.main`; library code takes what it needs as arguments, or calls
`load()` itself for a default (it re-reads the environment, so tests that change it are seen).
Credentials are `SecretStr`: they never show up in a repr, a log line or a manifest.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from core.errors import UserError
from core.paths import REPO

DEFAULT_RECIPE = "smollm2-135m-cpu"  # the embedded default: `make train` on a fresh clone, CPU, offline
STRATEGIES = ("auto", "none", "ddp", "zero1", "zero2", "zero3", "zero3-offload", "fsdp")
DEVICES = ("cpu", "gpu")
TRUE, FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off")


def _range(minimum: float, maximum: float | None, whole: bool) -> str:
    kind = "a whole number" if whole else "a number"
    return f"{kind} from {minimum:g} to {maximum:g}" if maximum is not None else f"{kind} >= {minimum:g}"


def parse_int(name: str, raw: str | None, minimum: int = 0, maximum: int | None = None) -> int | None:
    """The one integer parser for environment variables: '' or unset is None; anything else is a whole
    number in [minimum, maximum] or a UserError naming the variable and what it accepts."""
    raw = (raw or "").strip()
    if not raw:
        return None
    if not raw.lstrip("-").isdigit() or not minimum <= int(raw) <= (maximum if maximum is not None else int(raw)):
        raise UserError(f"{name} must be {_range(minimum, maximum, True)}, not '{raw}'")
    return int(raw)


def parse_float(name: str, raw: str | None, minimum: float = 0.0, maximum: float | None = None) -> float | None:
    raw = (raw or "").strip()
    if not raw:
        return None
    try:
        value = float(raw)
    except ValueError:
        raise UserError(f"{name} must be a number, not '{raw}'") from None
    if value != value or value < minimum or (maximum is not None and value > maximum) or value == float("inf"):
        raise UserError(f"{name} must be {_range(minimum, maximum, False)}, not '{raw}'")
    return value


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


def parse_bool(name: str, raw: str | None, default: bool) -> bool:
    raw = (raw or "").strip().lower()
    if not raw:
        return default
    if raw in TRUE:
        return True
    if raw in FALSE:
        return False
    raise UserError(f"{name} must be 1 or 0 (true/false), not '{raw}'")


def parse_choice(name: str, raw: str | None, choices: tuple[str, ...], unknown: str | None = None) -> str | None:
    """A lower-case choice; `unknown` phrases the error ("unknown distributed strategy") when given."""
    raw = (raw or "").strip()
    if not raw:
        return None
    if raw.lower() in choices:
        return raw.lower()
    if unknown:
        raise UserError(f"{name}: {unknown} '{raw}'", hint=f"one of: {', '.join(choices)}")
    raise UserError(f"{name} must be one of {', '.join(choices)}, not '{raw}'")


# (field, variable, minimum[, maximum]) for whole numbers and numbers
INTS = (
    ("gpus", "GPUS", 0),
    ("nodes", "NODES", 1),
    ("num_nodes", "NUM_NODES", 1),
    ("node_rank", "NODE_RANK", 0),
    ("master_port", "MASTER_PORT", 1, 65535),
    ("primary_port", "PRIMARY_PORT", 1, 65535),
    ("num_trainers", "NUM_TRAINERS", 1),
    ("world_size", "WORLD_SIZE", 1),
    ("rank", "RANK", 0),
    ("cpu_procs", "CPU_PROCS", 1),
    ("limit", "LIMIT", 0),
    ("max_new_tokens", "MAX_NEW_TOKENS", 1),
    ("concurrency", "CONCURRENCY", 1),
    ("seed", "SEED", 0),
    ("val", "VAL", 1),
    ("repeats", "REPEATS", 1),
    ("judge_retries", "JUDGE_RETRIES", 0),
    ("volume_gb", "VOLUME_GB", 1),
    ("port", "PORT", 1, 65535),
    ("bench_steps", "BENCH_STEPS", 1),
    ("gen_batch", "GEN_BATCH", 1),
)
FLOATS = (
    ("max_cost", "MAX_COST", 0.0),
    ("price_per_hour", "PRICE_PER_HOUR", 0.0),
    ("judge_timeout_s", "JUDGE_TIMEOUT_S", 0.001),
    ("runpod_backoff_s", "RUNPOD_BACKOFF_S", 0.0),
    ("temperature", "TEMPERATURE", 0.0, 2.0),  # what OpenAI-compatible judges accept
    ("top_p", "TOP_P", 0.0, 1.0),  # a probability
    ("judge_min_consistency", "JUDGE_MIN_CONSISTENCY", 0.0, 1.0),
    ("study_poll_s", "STUDY_POLL_S", 0.0),
)
BOOLS = (
    ("force", "FORCE", False),
    ("resume", "RESUME", True),
    ("dry_run", "DRY_RUN", False),
    ("follow", "FOLLOW", False),
    ("private", "PRIVATE", True),
    ("bench_quick", "BENCH_QUICK", False),
    ("runpod", "RUNPOD", False),
    ("hf_hub_offline", "HF_HUB_OFFLINE", False),
)
STRINGS = (
    # preference runs (issue 14): the run a recipe starts from, and make prefs' agreement rule
    "FROM_RUN",
    "AGREE",
    "SPLIT",
    "METHOD",
    "TEMPLATE",
    "HELDOUT",
    "RECIPE",
    "RUN",
    "ARGS",
    "GPU",
    "DATA",
    "FORMAT",
    "TO",
    "OUT",
    "PERSONAS",
    "GENERATOR",
    "ENDPOINT",
    "MODEL",
    "JUDGES",
    "JUDGE_URL",
    "SUITE",
    "BACKENDS",
    "FILES",
    "QUANTS",
    "OUTTYPE",
    "REPO",
    "IMAGE",
    "NETWORK_VOLUME",
    "POD",
    "PUSH_REPO",
    "POD_SECRETS",
    "PUBLIC_KEY",
    "TEMPLATE_NAME",
    "MASTER_ADDR",
    "PRIMARY_ADDR",
    "NCCL_SOCKET_IFNAME",
    "BASELINE",
    "HF_ENDPOINT",
    "RUNPOD_POD_ID",
    "ON_FINISH",
    "CLOUD",  # the provider (launch/cloud/registry.py)
    "CLOUD_TYPE",  # RunPod: SECURE | COMMUNITY | ALL
    "GGUF",
    # pods and clusters (launch/cloud), generation backend, GPU bench (issue 17)
    "SOURCE_CHECKOUT",
    "SOURCE_ARCHIVE",
    "RUNPOD_REST_URL",
    "CLUSTER_NAME",
    "DATA_CENTER",
    "WHEELS",
    "GEN_BACKEND",
    "SYSTEM",
    "JUDGE_GGUF",
    "STUDY",
    "STUDY_RUN",
    "STUDY_REPO",
    "STUDY_SPEC",
)
SECRETS = ("HF_TOKEN", "RUNPOD_API_KEY")


class Settings(BaseModel):
    """Everything the commands read from the environment, typed. Unset strings are None."""

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)
    # where things go
    outputs: Path
    cache: Path
    hf_home: Path
    gpu_table: Path | None = None
    # what to run
    recipe: str | None = None
    run: str | None = None
    args: str | None = None
    force: bool = False
    resume: bool = True
    # the machine and the launch
    device: Literal["cpu", "gpu"] | None = None
    strategy: str | None = None
    gpus: int | None = None
    nodes: int | None = None
    num_nodes: int | None = None
    node_rank: int | None = None
    master_addr: str | None = None
    master_port: int | None = None
    primary_addr: str | None = None
    primary_port: int | None = None
    num_trainers: int | None = None
    world_size: int | None = None
    rank: int | None = None
    cpu_procs: int | None = None
    nccl_socket_ifname: str | None = None
    runpod_cluster: bool = False
    # plan and pods
    gpu: str | None = None
    price_per_hour: float | None = None
    image: str | None = None
    network_volume: str | None = None
    cloud: str | None = None  # the provider: launch/cloud/registry.py
    cloud_type: str | None = None  # RunPod: SECURE | COMMUNITY | ALL
    pod: str | None = None
    push_repo: str | None = None
    pod_secrets: str | None = None
    public_key: str | None = None
    template_name: str | None = None
    on_finish: str | None = None
    runpod_pod_id: str | None = None
    runpod_backoff_s: float | None = None
    dry_run: bool = False
    follow: bool = False
    volume_gb: int | None = None
    source_checkout: str | None = None  # the checkout whose pushed commit a pod bootstraps (default: this one)
    source_archive: str | None = None  # a `git archive` of that commit on the volume, instead of the git remote
    runpod_rest_url: str | None = None  # RunPod's REST API v2 (clusters); tests point it at a local server
    cluster_name: str | None = None  # set on the pods of a cluster runpod-up made: whom ON_FINISH deletes
    data_center: str | None = None
    # export and publish
    quants: str | None = None
    outtype: str | None = None
    gguf: str | None = None
    repo: str | None = None
    private: bool = True
    hf_endpoint: str | None = None
    # evaluation
    backends: str | None = None
    limit: int | None = None
    max_new_tokens: int | None = None
    judges: str | None = None
    judge_url: str | None = None
    suite: str | None = None
    concurrency: int | None = None
    seed: int | None = None
    max_cost: float | None = None
    baseline: str | None = None
    judge_retries: int | None = None
    judge_timeout_s: float | None = None
    files: str | None = None
    port: int | None = None
    # chat, serve, ollama: the recipe's system prompt and sampling, overridden (SYSTEM=none: no system prompt)
    system: str | None = None
    temperature: float | None = None
    top_p: float | None = None
    judge_gguf: str | None = None
    judge_min_consistency: float | None = None
    # studies (eval/study): the study file, RUNPOD=1 for one pod per run, the results repo, and on a pod the
    # run it works on (its key and its job, base64 JSON: pod env values cannot hold quotes)
    study: str | None = None
    runpod: bool = False
    study_repo: str | None = None
    study_run: str | None = None
    study_spec: str | None = None
    study_poll_s: float | None = None
    # preference runs and make prefs
    from_run: str | None = None
    agree: str | None = None
    # data tools and make new
    split: str | None = None
    method: str | None = None
    template: str | None = None
    heldout: str | None = None
    data: str | None = None
    format: str | None = None
    to: str | None = None
    out: str | None = None
    val: int | None = None
    personas: str | None = None
    generator: str | None = None
    endpoint: str | None = None
    model: str | None = None
    gen_backend: str | None = None  # generation for judging: auto (default), hf or gguf
    gen_batch: int | None = None
    # bench
    bench_quick: bool = False
    repeats: int | None = None
    bench_steps: int | None = None
    wheels: str | None = None
    hf_hub_offline: bool = False
    # credentials (never printed)
    hf_token: SecretStr | None = None
    runpod_api_key: SecretStr | None = None
    env: Mapping[str, str] = Field(default_factory=dict, repr=False, exclude=True)

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


def load(env: Mapping[str, str] | None = None) -> Settings:
    """Parse and validate the environment (os.environ by default). Raises UserError naming the variable."""
    env = dict(os.environ if env is None else env)
    values: dict[str, Any] = {}
    for name in STRINGS:
        raw = (env.get(name) or "").strip()
        values[name.lower()] = raw or None
    for field, name, *bounds in INTS:
        values[field] = parse_int(name, env.get(name), *bounds)
    for field, name, *bounds in FLOATS:
        values[field] = parse_float(name, env.get(name), *bounds)
    for field, name, default in BOOLS:
        values[field] = parse_bool(name, env.get(name), default)
    values["device"] = parse_choice("DEVICE", env.get("DEVICE"), DEVICES)
    values["strategy"] = parse_choice("STRATEGY", env.get("STRATEGY"), STRATEGIES, "unknown distributed strategy")
    for name in SECRETS:
        raw = (env.get(name) or "").strip()
        values[name.lower()] = SecretStr(raw) if raw else None
    values["runpod_cluster"] = "NUM_TRAINERS" in env or "PRIMARY_ADDR" in env
    default_cache = Path(env.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "affinage"
    values.update(
        outputs=Path(env.get("OUTPUTS") or REPO / "outputs").expanduser().resolve(),
        cache=Path(env.get("AFFINAGE_CACHE") or default_cache).expanduser().resolve(),
        hf_home=Path(env.get("HF_HOME") or Path.home() / ".cache" / "huggingface").expanduser(),
        gpu_table=Path(env["GPU_TABLE"]).expanduser() if env.get("GPU_TABLE") else None,
        env=env,
    )
    return Settings(**values)


def outputs_dir() -> Path:
    """Root of run directories; OUTPUTS overrides (tests point it at a temp dir)."""
    return load().outputs


def cache_dir() -> Path:
    """Materialized local models and other rebuildable things; AFFINAGE_CACHE overrides."""
    return load().cache
