"""A thin client over the documented endpoints of RunPod's REST API v2 that the runpod SDK (1.10.0) does not cover:
Instant Clusters (POST/GET /v2/clusters, GET/DELETE /v2/clusters/{id}, GET /v2/clusters/{id}/pods). Bearer auth
with RUNPOD_API_KEY, the repo's one retry policy (core/retry.py) for connection failures, 429 and 5xx, and every
failure as one clear line that never holds the key; errors are RFC 9457 problem+json (title, detail, errors).
RUNPOD_REST_URL points it elsewhere (the tests' local server); the default is the spec's production server."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from core.errors import UserError, Where
from core.retry import transient_status
from launch.cloud.runpod import api

BASE_URL = "https://api.runpod.io"
TIMEOUT_S = 30


class HTTPError(Exception):
    def __init__(self, status: int, body: Any):
        self.status_code, self.body = status, body
        super().__init__(f"HTTP {status}")

    def problem(self) -> str:
        """title: detail (errors) of a problem+json body, or the start of whatever came back."""
        b = self.body
        if isinstance(b, dict) and ("title" in b or "detail" in b):
            text = ": ".join(str(b[k]) for k in ("title", "detail") if b.get(k))
            errors = b.get("errors") or []
            return text + (f" ({'; '.join(map(str, errors))})" if errors else "")
        return f"HTTP {self.status_code}: {str(b)[:200]}"


def base_url(acct: api.Account) -> str:
    return (acct.rest_url or BASE_URL).rstrip("/")


def _send(acct: api.Account, method: str, path: str, body: dict | None) -> Any:
    import requests

    reply = requests.request(
        method,
        base_url(acct) + path,
        json=body,
        headers={"Authorization": f"Bearer {api.api_key(acct)}", "Accept": "application/json"},
        timeout=TIMEOUT_S,
    )
    if reply.status_code >= 400:
        try:
            parsed: Any = reply.json()
        except ValueError:
            parsed = reply.text
        raise HTTPError(reply.status_code, parsed)
    if reply.status_code == 204 or not reply.content:
        return None
    return reply.json()  # a non-JSON 2xx (a gateway page) raises a requests JSONDecodeError: transient


def _transient(exc: BaseException) -> bool:
    import requests

    if isinstance(exc, HTTPError):
        return transient_status(exc.status_code)
    return isinstance(exc, requests.RequestException)


def call(
    acct: api.Account,
    what: str,
    method: str,
    path: str,
    body: dict | None = None,
    between: Callable[[], Any] | None = None,
) -> Any:
    """One REST call with bounded retries; `between` runs before each retry and may end the loop with a result
    (a create whose reply was lost is found by name)."""
    import requests

    try:
        return api._retry(acct, what).call(lambda: _send(acct, method, path, body), _transient, between)
    except HTTPError as exc:
        if exc.status_code in (401, 403):
            raise UserError(
                f"RunPod refused the API key while {what}",
                Where(key="RUNPOD_API_KEY"),
                "check RUNPOD_API_KEY (a read-write key is needed to create clusters)",
            ) from None
        if exc.status_code == 404:
            raise NotFound(what) from None
        if transient_status(exc.status_code):
            raise UserError(
                f"RunPod API did not answer usably while {what} ({api.ATTEMPTS} attempts; last: "
                f"{api.redact(acct, exc.problem())[:300]})",
                hint="nothing was changed on your account by the failed attempts that we know of; see make runpod-status",
            ) from None
        raise UserError(f"RunPod API error while {what}: {api.redact(acct, exc.problem())}") from None
    except requests.RequestException as exc:
        reason = api.redact(acct, f"{type(exc).__name__}: {exc}")[:300]
        raise UserError(
            f"RunPod API did not answer usably while {what} ({api.ATTEMPTS} attempts; last: {reason})",
            hint="nothing was changed on your account by the failed attempts that we know of; see make runpod-status",
        ) from None


class NotFound(Exception):
    """A 404: the caller decides whether that is an error (reading a deleted cluster is not)."""
