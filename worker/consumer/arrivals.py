"""Deliveries the kombu callback has handed over, taken by the loop a batch at a time.

Deliveries are kept here by the callback and handled by the loop, never inside the callback, so
publishing (on another connection) never re-enters the consumer. Deliveries get here from any
read of the consuming connection, its heartbeat reads too.
"""

from __future__ import annotations

import socket
from typing import Any

from kombu.connection import Connection

from worker.adapters import broker

POLL_SECONDS = 0.2  # one wait for deliveries, before the loop looks around


class Arrivals:
    def __init__(self, batch_size: int) -> None:
        self.batch_size = batch_size
        self._waiting: list[Any] = []

    def add(self, message: Any) -> None:
        """The consumer's callback."""
        self._waiting.append(message)

    def __len__(self) -> int:
        return len(self._waiting)

    def take(self) -> list[Any]:
        """The next batch, oldest first."""
        batch, self._waiting[: self.batch_size] = self._waiting[: self.batch_size], []
        return batch

    def clear(self) -> None:
        """Forget them: unacked, the broker delivers them again."""
        self._waiting.clear()

    def drain(self, consuming: Connection) -> bool:
        """Wait for a delivery unless some are in hand already, then take whatever else has
        arrived, up to a batch, without waiting for more. False: none came within the poll.

        With the whole prefetch window in hand, waiting for one more would wait for nothing (the
        broker sends no more until the batch is acked). And any wait for company delays every
        message more than the bigger batch saves: under load, what arrived while the last batch
        was in hand makes the next batch."""
        if not self._waiting:
            try:
                consuming.drain_events(timeout=POLL_SECONDS)
            except (TimeoutError, socket.timeout):  # noqa: UP041 - transports raise either
                return False
        broker.read_arrived(consuming, enough=lambda: len(self._waiting) >= self.batch_size)
        return True
