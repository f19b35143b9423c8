"""The runpod SDK's calls, made safe to use from a CLI: the key comes from RUNPOD_API_KEY only, transient
failures (connection drops, timeouts, non-JSON gateway replies such as 429/5xx pages) are retried a bounded
number of times with exponential backoff (core/retry.py), and every failure becomes one clear line that never
holds the key. RUNPOD_API_BASE_URL (read by the SDK itself) points it elsewhere, e.g. at the tests' local server."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from core import settings
from core.errors import UserError, Where
from core.retry import Retry

ATTEMPTS = 4
BACKOFF_S = 2.0  # 2, 4, 8 s between attempts; RUNPOD_BACKOFF_S changes the base (tests use 0)


def api_key() -> str:
    key = settings.load().runpod_api_key
    if key is None:
        raise UserError(
            "RUNPOD_API_KEY is not set",
            Where(key="RUNPOD_API_KEY"),
            "create a key at runpod.io (Settings > API Keys) and export RUNPOD_API_KEY=...; "
            "it is read from the environment only, never from a file in this repo",
        )
    return key.get_secret_value()


def _runpod():
    import runpod

    runpod.api_key = api_key()
    return runpod


def redact(text: str) -> str:
    key = settings.load().runpod_api_key
    return text.replace(key.get_secret_value(), "***") if key else text


def _retry(what: str) -> Retry:
    backoff = settings.load().runpod_backoff_s

    def say(attempt: int, delay: float, exc: BaseException) -> None:
        reason = redact(f"{type(exc).__name__}: {exc}")[:300]
        print(f"runpod: {what} failed ({reason}); retry {attempt}/{ATTEMPTS - 1} in {delay:.0f} s", flush=True)

    return Retry(ATTEMPTS, BACKOFF_S if backoff is None else backoff, say)


def call(
    what: str, fn: Callable[..., Any], *args: Any, on_retry: Callable[[], Any] | None = None, **kwargs: Any
) -> Any:
    """Run one SDK call. `on_retry`, if given, runs before each retry and may return a result that ends
    the loop (used by create: a pod whose reply was lost in transit is found, not created twice)."""
    import requests
    from runpod import error as rp_error

    try:
        return _retry(what).call(
            lambda: fn(*args, **kwargs), lambda e: isinstance(e, requests.RequestException), on_retry
        )
    except rp_error.AuthenticationError:
        raise UserError(
            f"RunPod refused the API key while {what}",
            Where(key="RUNPOD_API_KEY"),
            "check RUNPOD_API_KEY (a read-write key is needed to create pods)",
        ) from None
    except rp_error.QueryError as exc:
        raise UserError(f"RunPod API error while {what}: {redact(str(exc.message))}") from None
    except requests.RequestException as exc:  # includes non-JSON replies (JSONDecodeError)
        reason = redact(f"{type(exc).__name__}: {exc}")[:300]
        raise UserError(
            f"RunPod API did not answer usably while {what} ({ATTEMPTS} attempts; last: {reason})",
            hint="nothing was changed on your account by the failed attempts that we know of; see make runpod-status",
        ) from None


def find_pod_named(name: str) -> dict[str, Any] | None:
    """One unretried look for a pod of this name (between retries of a create; a failure counts as not found
    and the create's own retry budget goes on)."""
    try:
        pods = _runpod().get_pods() or []
    except Exception:  # noqa: BLE001 - any failure: not known to exist
        return None
    return next((p for p in pods if p.get("name") == name), None)


def create_pod(kwargs: dict[str, Any]) -> dict[str, Any]:
    """The SDK looks the GPU type up first (ValueError when RunPod has no such type), then deploys."""
    rp = _runpod()
    try:
        return call(
            f"creating pod {kwargs['name']}", rp.create_pod, **kwargs, on_retry=lambda: find_pod_named(kwargs["name"])
        )
    except ValueError as exc:
        if "No GPU found" in str(exc):
            raise UserError(
                f"RunPod knows no GPU type '{kwargs['gpu_type_id']}'",
                hint="fix runpod_id in launch/preflight/gpus.yaml (the API's gpuTypes ids)",
            ) from None
        raise UserError(f"the RunPod SDK refused the request: {exc}") from None


def get_pod(pod_id: str) -> dict[str, Any] | None:
    return call(f"reading pod {pod_id}", _runpod().get_pod, pod_id)


def stop_pod(pod_id: str) -> Any:
    return call(f"stopping pod {pod_id}", _runpod().stop_pod, pod_id)


def terminate_pod(pod_id: str) -> Any:
    return call(f"terminating pod {pod_id}", _runpod().terminate_pod, pod_id)


def create_template(kwargs: dict[str, Any]) -> dict[str, Any]:
    return call(f"creating template {kwargs['name']}", _runpod().create_template, **kwargs)
