"""The runpod SDK's calls, made safe to use from a CLI: the key comes from RUNPOD_API_KEY only, transient
failures (connection drops, timeouts, non-JSON gateway replies such as 429/5xx pages) are retried a bounded
number of times with exponential backoff (core/retry.py), and every failure becomes one clear line that never
holds the key. RUNPOD_API_BASE_URL (read by the SDK itself) points it elsewhere, e.g. at the tests' local server.
The settings these calls need are an `Account`, taken from the command's settings at its entry point."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import SecretStr

from core.errors import UserError, Where
from core.retry import Retry
from core.settings import CloudSettings, Settings

ATTEMPTS = 4
BACKOFF_S = 2.0  # 2, 4, 8 s between attempts; RUNPOD_BACKOFF_S changes the base (tests use 0)


@dataclass(frozen=True)
class Account:
    """What RunPod's calls read from the settings: RUNPOD_API_KEY, RUNPOD_BACKOFF_S and RUNPOD_REST_URL."""

    key: SecretStr | None
    backoff_s: float | None = None
    rest_url: str | None = None

    @classmethod
    def of(cls, s: Settings | CloudSettings) -> Account:
        return cls(s.runpod_api_key, s.runpod_backoff_s, s.runpod_rest_url)


def api_key(acct: Account) -> str:
    key = acct.key
    if key is None:
        raise UserError(
            "RUNPOD_API_KEY is not set",
            Where(key="RUNPOD_API_KEY"),
            "create a key at runpod.io (Settings > API Keys) and export RUNPOD_API_KEY=...; "
            "it is read from the environment only, never from a file in this repo",
        )
    return key.get_secret_value()


def _runpod(acct: Account):
    import runpod

    runpod.api_key = api_key(acct)
    return runpod


def redact(acct: Account, text: str) -> str:
    key = acct.key
    return text.replace(key.get_secret_value(), "***") if key else text


def _retry(acct: Account, what: str) -> Retry:
    backoff = acct.backoff_s

    def say(attempt: int, delay: float, exc: BaseException) -> None:
        reason = redact(acct, f"{type(exc).__name__}: {exc}")[:300]
        print(f"runpod: {what} failed ({reason}); retry {attempt}/{ATTEMPTS - 1} in {delay:.0f} s", flush=True)

    return Retry(ATTEMPTS, BACKOFF_S if backoff is None else backoff, say)


def call(
    acct: Account,
    what: str,
    fn: Callable[..., Any],
    *args: Any,
    on_retry: Callable[[], Any] | None = None,
    **kwargs: Any,
) -> Any:
    """Run one SDK call. `on_retry`, if given, runs before each retry and may return a result that ends
    the loop (used by create: a pod whose reply was lost in transit is found, not created twice)."""
    import requests
    from runpod import error as rp_error

    try:
        return _retry(acct, what).call(
            lambda: fn(*args, **kwargs), lambda e: isinstance(e, requests.RequestException), on_retry
        )
    except rp_error.AuthenticationError:
        raise UserError(
            f"RunPod refused the API key while {what}",
            Where(key="RUNPOD_API_KEY"),
            "check RUNPOD_API_KEY (a read-write key is needed to create pods)",
        ) from None
    except rp_error.QueryError as exc:
        raise UserError(f"RunPod API error while {what}: {redact(acct, str(exc.message))}") from None
    except requests.RequestException as exc:  # includes non-JSON replies (JSONDecodeError)
        reason = redact(acct, f"{type(exc).__name__}: {exc}")[:300]
        raise UserError(
            f"RunPod API did not answer usably while {what} ({ATTEMPTS} attempts; last: {reason})",
            hint="nothing was changed on your account by the failed attempts that we know of; see make runpod-status",
        ) from None


def find_pod_named(acct: Account, name: str) -> dict[str, Any] | None:
    """One unretried look for a pod of this name (between retries of a create; a failure counts as not found
    and the create's own retry budget goes on)."""
    try:
        pods = _runpod(acct).get_pods() or []
    except Exception:  # noqa: BLE001 - any failure: not known to exist
        return None
    return next((p for p in pods if p.get("name") == name), None)


def create_pod(acct: Account, kwargs: dict[str, Any]) -> dict[str, Any]:
    """The SDK looks the GPU type up first (ValueError when RunPod has no such type), then deploys."""
    rp = _runpod(acct)
    try:
        return call(
            acct,
            f"creating pod {kwargs['name']}",
            rp.create_pod,
            **kwargs,
            on_retry=lambda: find_pod_named(acct, kwargs["name"]),
        )
    except ValueError as exc:
        if "No GPU found" in str(exc):
            raise UserError(
                f"RunPod knows no GPU type '{kwargs['gpu_type_id']}'",
                hint="fix runpod_id in launch/preflight/gpus.yaml (the API's gpuTypes ids)",
            ) from None
        raise UserError(f"the RunPod SDK refused the request: {exc}") from None


def get_pod(acct: Account, pod_id: str) -> dict[str, Any] | None:
    return call(acct, f"reading pod {pod_id}", _runpod(acct).get_pod, pod_id)


def stop_pod(acct: Account, pod_id: str) -> Any:
    return call(acct, f"stopping pod {pod_id}", _runpod(acct).stop_pod, pod_id)


def terminate_pod(acct: Account, pod_id: str) -> Any:
    return call(acct, f"terminating pod {pod_id}", _runpod(acct).terminate_pod, pod_id)


def create_template(acct: Account, kwargs: dict[str, Any]) -> dict[str, Any]:
    return call(acct, f"creating template {kwargs['name']}", _runpod(acct).create_template, **kwargs)
