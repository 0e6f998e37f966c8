"""Why a message went to `kmo.dead-letter` (contract.md § Dead letters): the one list of reasons,
in the order the checks run."""

from __future__ import annotations

from typing import Literal, get_args

Reason = Literal[
    "too_large",
    "not_json",
    "unknown_type",
    "schema_violation",
    "unauthorized_publisher",
    "processing_failed",  # valid and authorised, but handling it failed (a bug, or retries ran out)
    "numbers_exhausted",  # a request to number when the service's numbers are used up (R21)
]
REASONS: tuple[Reason, ...] = get_args(Reason)  # the worker's, in its `x-kmo-reason` header
# RabbitMQ's own: a message delivered too often without an ack (it killed its consumer each time).
DELIVERY_LIMIT = "delivery_limit"
