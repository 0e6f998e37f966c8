"""Which failures are worth another try, and how often: a value, not decorators everywhere."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    stop_after_delay,
    wait_exponential,
    wait_random,
)

from worker.adapters.store.port import StaleRegistrationError

SERIALIZATION_FAILURE = "40001"
DEADLOCK = "40P01"


def cause(error: BaseException) -> str | None:
    """The retry cause for a transient failure; None when trying again cannot help."""
    if isinstance(error, StaleRegistrationError):
        return "stale_registration"
    if isinstance(error, OperationalError):
        return "database_unavailable"
    if isinstance(error, IntegrityError):
        # Two replicas inserted the same new registration, inbox row or counter at once: the
        # loser's retry finds the winner's row.
        return "conflict"
    if isinstance(error, DBAPIError):
        code = getattr(error.orig, "sqlstate", None)
        if code == SERIALIZATION_FAILURE:
            return "serialization_failure"
        if code == DEADLOCK:
            return "deadlock"
        if error.connection_invalidated:
            return "database_unavailable"
    return None


def policy(on_retry: Callable[[str], None], attempts: int, max_seconds: float) -> Retrying:
    """Retry transient failures with exponential backoff plus jitter (replicas desynchronise),
    within a bound of attempts and time (`KMO_RETRY_ATTEMPTS`, `KMO_RETRY_MAX_SECONDS`); the
    last failure is raised to the caller."""

    def before_sleep(state: RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome else None
        on_retry((cause(error) if error else None) or "unknown")

    return Retrying(
        retry=retry_if_exception(lambda error: cause(error) is not None),
        stop=stop_after_attempt(attempts) | stop_after_delay(max_seconds),
        wait=wait_exponential(multiplier=0.05, max=5.0) + wait_random(0, 0.05),
        before_sleep=before_sleep,
        reraise=True,
    )
