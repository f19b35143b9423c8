"""The one error for a Hugging Face Hub that refused the request's token (HTTP 401 or 403), wherever we call the
Hub (model facts, push, a study's results repo): it names the variable or key to fix, never the token."""

from __future__ import annotations

from core.errors import UserError, Where
from core.retry import http_status

REFUSED = (401, 403)
WRITE_HINT = "use a token with write access to that namespace"


def refusal(exc: BaseException, what: str, where: Where, hint: str) -> UserError | None:
    """UserError "the Hub refused <what> (HTTP <status>)" when exc is a 401/403 answer; None for any other failure
    (the caller says what that one means)."""
    status = http_status(exc)
    if status not in REFUSED:
        return None
    return UserError(f"the Hub refused {what} (HTTP {status})", where, hint)
