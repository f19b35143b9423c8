"""One retry policy for the HTTP services we call (judge endpoints, the Hugging Face Hub, RunPod): a bounded
number of attempts with exponential backoff, for failures the caller classifies as transient. Whatever is
finally raised is the caller's business (each turns it into one clear UserError)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


class Retry:
    """attempts: total tries; backoff_s: the first wait, doubled after each failure."""

    def __init__(
        self, attempts: int, backoff_s: float, on_wait: Callable[[int, float, BaseException], None] | None = None
    ):
        self.attempts = max(1, attempts)
        self.backoff_s = max(0.0, backoff_s)
        self.on_wait = on_wait

    def call(
        self, fn: Callable[[], T], transient: Callable[[BaseException], bool], between: Callable[[], Any] | None = None
    ) -> T:
        """Call fn until it returns or fails with a non-transient error or the attempts run out (the last error
        is raised). `between`, run before each retry, may return a result that ends the loop (a create whose
        reply was lost is found instead of made twice)."""
        for attempt in range(1, self.attempts + 1):
            try:
                return fn()
            except BaseException as exc:
                if attempt == self.attempts or not transient(exc):
                    raise
                delay = self.backoff_s * 2 ** (attempt - 1)
                if self.on_wait is not None:
                    self.on_wait(attempt, delay, exc)
                time.sleep(delay)
                if between is not None:
                    found = between()
                    if found is not None:
                        return found
        raise AssertionError("unreachable")


def http_status(exc: BaseException) -> int | None:
    """The HTTP status carried by an exception from requests, httpx, openai or huggingface_hub, if any."""
    for holder in (exc, getattr(exc, "response", None)):
        code = getattr(holder, "status_code", None)
        if isinstance(code, int):
            return code
    return None


def transient_status(status: int | None) -> bool:
    """Rate limits and server errors are worth another try; other 4xx answers are not."""
    return status is None or status == 429 or status >= 500
