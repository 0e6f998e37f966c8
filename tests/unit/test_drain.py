"""How the consumer loop gathers a batch from a steady stream: what has already arrived, no more.
A socket's own timeout cannot say "already arrived": CPython rounds it up to a whole millisecond, so at more than a delivery a millisecond a
loop that drains "whatever comes within 0.1 ms" follows the stream until the batch is full, and
the batch's first message waits all that time (seen in the benchmark: 50 ms and more at 1,100
msg/s). The stand-in connection below delivers over a real socket pair, a byte per delivery."""

from __future__ import annotations

import math
import select
import socket
import threading
import time
from types import SimpleNamespace
from typing import Any

from worker import config
from worker.adapters import wire
from worker.consumer import arrivals


class SteadyStream:
    """A delivery every `gap` seconds, forever, as far as a drain can tell."""

    def __init__(self, on_message: Any, gap: float) -> None:
        self._ours, self._theirs = socket.socketpair()
        self.on_message, self.gap = on_message, gap
        # What `wire.bytes_waiting` looks at on a py-amqp connection.
        self.connection = SimpleNamespace(
            transport=SimpleNamespace(sock=self._ours, _read_buffer=b"")
        )
        self._stop = threading.Event()
        self.delivered = 0
        self._thread = threading.Thread(target=self._flow, daemon=True)

    def __enter__(self) -> SteadyStream:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join(5)
        self._ours.close()
        self._theirs.close()

    def _flow(self) -> None:
        while not self._stop.is_set():
            self._theirs.send(b"m")
            time.sleep(self.gap)

    def drain_events(self, timeout: float) -> None:
        """As py-amqp's: a delivery if one comes within `timeout`, which a socket rounds up to
        a whole millisecond."""
        readable, _, _ = select.select([self._ours], [], [], math.ceil(timeout * 1000) / 1000)
        if not readable:
            raise TimeoutError
        self._ours.recv(1)
        self.delivered += 1
        self.on_message(object())


def test_a_batch_takes_what_has_arrived_and_does_not_follow_a_steady_stream() -> None:
    waiting = arrivals.Arrivals(batch_size=5_000)
    with SteadyStream(waiting.add, gap=0.0005) as stream:
        time.sleep(0.02)  # a few deliveries wait already
        assert waiting.drain(stream) is True  # type: ignore[arg-type]
    taken = len(waiting)
    # ~40 waiting; a drain that followed the stream would take one every 0.5 ms until 5,000
    # (2.5 s).
    assert 5 <= taken < 500


def test_pending_is_a_look_at_the_socket_not_a_wait() -> None:
    ours, theirs = socket.socketpair()
    connection = SimpleNamespace(
        connection=SimpleNamespace(transport=SimpleNamespace(sock=ours, _read_buffer=b""))
    )
    try:
        assert wire.bytes_waiting(connection) is False  # type: ignore[arg-type]
        theirs.send(b"x")
        deadline = time.monotonic() + 2
        while not wire.bytes_waiting(connection) and time.monotonic() < deadline:  # type: ignore[arg-type]
            time.sleep(0.001)
        assert wire.bytes_waiting(connection) is True  # type: ignore[arg-type]
        ours.recv(1)
        assert wire.bytes_waiting(connection) is False  # type: ignore[arg-type]
        # A frame half read by py-amqp: the rest is on its way.
        connection.connection.transport._read_buffer = b"\x03"
        assert wire.bytes_waiting(connection) is True  # type: ignore[arg-type]
        # A transport without a socket (the embedded one): its drain polls on its own.
        assert wire.bytes_waiting(SimpleNamespace(connection=object())) is True  # type: ignore[arg-type]
    finally:
        ours.close()
        theirs.close()


def test_a_drain_with_deliveries_in_hand_does_not_wait_for_another() -> None:
    """Reading a connection for its heartbeats reads its deliveries too; with the whole prefetch
    window in the buffer the broker sends nothing more until an ack, so waiting for "a first
    delivery" stalled every batch of a burst for the full poll (throughput fell to a third)."""
    settings = config.Settings()
    waiting = arrivals.Arrivals(settings.batch_size)
    ours, theirs = socket.socketpair()
    waits: list[float] = []

    def drain_events(timeout: float) -> None:
        waits.append(timeout)
        raise TimeoutError

    silent = SimpleNamespace(
        connection=SimpleNamespace(transport=SimpleNamespace(sock=ours, _read_buffer=b"")),
        drain_events=drain_events,
    )
    try:
        for _ in range(settings.prefetch):
            waiting.add(object())
        assert waiting.drain(silent) is True  # type: ignore[arg-type]
        assert waits == []  # nothing pending on the socket: no read at all
        waiting.clear()
        assert waiting.drain(silent) is False  # none in hand: it waits for a first one
        assert waits == [arrivals.POLL_SECONDS]
    finally:
        ours.close()
        theirs.close()
