"""Which failures are worth another try, and how often: a value, not decorators everywhere."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from sqlalchemy.exc import DBAPIError, OperationalError
from tenacity import (
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    stop_after_delay,
    wait_exponential_jitter,
)

from worker.adapters.repository import StaleRegistrationError

T = TypeVar("T")

ATTEMPTS = 8
MAX_SECONDS = 60.0  # a database restart normally takes a few seconds
SERIALIZATION_FAILURE = "40001"
DEADLOCK = "40P01"


def cause(error: BaseException) -> str | None:
    """The retry cause for a transient failure; None when trying again cannot help."""
    if isinstance(error, StaleRegistrationError):
        return "stale_registration"
    if isinstance(error, OperationalError):
        return "database_unavailable"
    if isinstance(error, DBAPIError):
        code = getattr(error.orig, "sqlstate", None)
        if code == SERIALIZATION_FAILURE:
            return "serialization_failure"
        if code == DEADLOCK:
            return "deadlock"
        if error.connection_invalidated:
            return "database_unavailable"
    return None


def call(
    operation: Callable[[], T],
    on_retry: Callable[[str], None] = lambda _cause: None,
    attempts: int = ATTEMPTS,
    max_seconds: float = MAX_SECONDS,
) -> T:
    """Run `operation`, retrying transient failures with jittered exponential backoff."""

    def before_sleep(state: object) -> None:
        outcome = getattr(state, "outcome", None)
        error = outcome.exception() if outcome is not None else None
        on_retry(cause(error) or "unknown" if error else "unknown")

    retrying = Retrying(
        retry=retry_if_exception(lambda error: cause(error) is not None),
        stop=stop_after_attempt(attempts) | stop_after_delay(max_seconds),
        wait=wait_exponential_jitter(initial=0.05, max=5.0),
        before_sleep=before_sleep,
        reraise=True,
    )
    return retrying(operation)
