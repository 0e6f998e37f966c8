"""The consumer loop: deliveries in, one transaction per batch, acks; then the relay and the sweep.

Deliveries are buffered by the kombu callback and handled by the loop, never inside the callback,
so publishing (on its own connection, with confirms) never re-enters the consumer. A batch is
what has arrived when the loop gets to it, up to `KMO_BATCH_SIZE`. The events a batch commits
leave through `sending`: published right after the commit, their confirms collected while the
next batch is in hand, marked sent with the next batch's transaction. A lost broker connection
ends the session; the loop reconnects with backoff, declares the topology again and consumes
again. Deliveries not yet acked are redelivered by the broker, and the inbox makes the second
handling a no-op where the first one had committed.
"""

from __future__ import annotations

import gc
import signal
import socket
import time
from collections.abc import Callable
from types import FrameType

from kombu.connection import Connection
from kombu.message import Message as KombuMessage
from kombu.messaging import Consumer, Producer
from sqlalchemy.exc import SQLAlchemyError

from worker.adapters import broker, confirms, database, outbox, registrations, timers
from worker.bootstrap import App
from worker.contracts.common import State
from worker.contracts.envelope import Outgoing
from worker.entrypoints import deliveries, sending
from worker.observability import health, logs
from worker.observability import metrics as m
from worker.service import handling, retrying, sweep

POLL_SECONDS = 0.2  # one wait for deliveries, before the loop looks around
SWEEP_EVERY_SECONDS = 1.0
RECONNECT_FIRST_SECONDS = 0.5
RECONNECT_MAX_SECONDS = 30.0
DATABASE_PAUSE_SECONDS = 1.0  # after the relay or sweep found the database away
STATS_EVERY_SECONDS = 10.0  # outbox backlog and timers: cheap queries on partial indexes
STATES_EVERY_SECONDS = 60.0  # registrations by state: a GROUP BY over every registration
STOP_POLL_SECONDS = 0.05  # how soon a pause notices a stop request
KEEP_ALIVE_EVERY_SECONDS = 1.0  # py-amqp: heartbeats checked "on the order of once per second"

log = logs.get(__name__)


class StopFlag:
    """Like threading.Event, without a lock, so a signal handler may set it safely (the GIL
    makes the attribute writes atomic). `wait` polls: it is only used for pauses."""

    def __init__(self) -> None:
        self._set = False
        self.signal: str | None = None

    def set(self) -> None:
        self._set = True

    def is_set(self) -> bool:
        return self._set

    def wait(self, seconds: float) -> bool:
        deadline = time.monotonic() + seconds
        while not self._set and (left := deadline - time.monotonic()) > 0:
            time.sleep(min(left, STOP_POLL_SECONDS))
        return self._set


def _every(seconds: float, action: Callable[[], None]) -> Callable[[], None]:
    """`action`, at most once every `seconds`; the first call runs it."""
    last = -float("inf")

    def maybe() -> None:
        nonlocal last
        now = time.monotonic()
        if now - last >= seconds:
            last = now
            action()

    return maybe


class Runner:
    def __init__(self, app: App) -> None:
        self.app = app
        self.stopping = StopFlag()
        self._buffer: list[KombuMessage] = []
        self._last_sweep = 0.0
        self._sending = sending.Sending(app, self._database_away)
        self._keep_alive: Callable[[], None] = lambda: None
        self._last_stats = 0.0
        self._last_states = 0.0
        self.health = health.Health(
            liveness_seconds=app.settings.liveness_seconds,
            database_ok=self._database_answers,
            schema_at_head=lambda: database.is_at_head(app.engine),
        )
        self._retrying = retrying.policy(
            on_retry=self._retried,
            attempts=app.settings.retry_attempts,
            max_seconds=app.settings.retry_max_seconds,
        )
        self._deliveries = deliveries.Deliveries(app, self._retrying)

    @staticmethod
    def _retried(cause: str) -> None:
        m.RETRIES.labels(cause).inc()
        log.warning("retrying", cause=cause)

    def install_signal_handlers(self) -> None:
        def stop(signum: int, _frame: FrameType | None) -> None:
            # Only a flag: the handler runs between two bytecodes of the main thread, which may
            # hold a lock at that moment (the log writer's, an Event's); taking it here again
            # would hang the process on its way out. The loop logs the request.
            self.stopping.signal = signal.Signals(signum).name
            self.stopping.set()

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)

    def serve_http(self) -> None:
        port = self.app.settings.metrics_port
        if port:
            health.serve(self.health, port)
            log.info("http_listening", port=port, paths=["/metrics", "/healthz", "/readyz"])

    def run(self, *, until_idle: bool = False) -> int:
        delay = RECONNECT_FIRST_SECONDS
        while not self.stopping.is_set():
            try:
                self._session(until_idle)
                break
            except broker.RECOVERABLE as error:
                self._connected(False)
                self._buffer.clear()  # unacked: the broker delivers them again
                self._sending.mark_sent()  # what the broker confirmed before it went away
                log.warning("broker_connection_lost", error=repr(error), retry_in_s=delay)
                if self.stopping.wait(delay):
                    break
                delay = min(delay * 2, RECONNECT_MAX_SECONDS)
        if self.stopping.signal:
            log.info("stop_requested", signal=self.stopping.signal)
        log.info("worker_stopped")
        return 0

    def _session(self, until_idle: bool) -> None:
        settings, topo = self.app.settings, self.app.topology
        with (
            broker.connect(settings) as consuming,
            broker.connect(settings, confirms=True) as publishing,
            broker.connect(settings) as relaying,
        ):
            for connection in (consuming, publishing, relaying):
                connection.ensure_connection(max_retries=1)
            broker.declare(consuming, topo)
            broker.declare(publishing, topo)
            producer = Producer(publishing.default_channel)  # dead letters, one confirm each
            if settings.is_embedded_broker:
                # No confirms and no returns on the embedded transport: publish one by one.
                self._sending.connect(confirms.Unconfirmed(producer))
            else:
                returned = self._sending.returned
                self._sending.connect(confirms.ConfirmedBatches(relaying, on_return=returned))
            consumer = Consumer(
                consuming.default_channel,
                queues=[topo.inbound],
                on_message=self._buffer.append,
                prefetch_count=settings.prefetch,
            )
            # Heartbeats: py-amqp sends them only when asked, on every connection. Asked a few
            # times per heartbeat interval, not on every turn of the loop: three connections
            # cost 0.8 ms a time, a tenth of a small batch's whole cycle (measured).
            heartbeat = settings.heartbeat_seconds
            self._keep_alive = (
                (lambda: None)
                if settings.is_embedded_broker
                else _every(
                    min(KEEP_ALIVE_EVERY_SECONDS, heartbeat / 4 or KEEP_ALIVE_EVERY_SECONDS),
                    lambda: self._heartbeats(consuming, publishing, relaying),
                )
            )
            try:
                with consumer:
                    self._connected(True)
                    log.info(
                        "worker_started",
                        queue=topo.inbound.name,
                        until_idle=until_idle,
                        frozen_objects=gc.get_freeze_count(),
                    )
                    self._loop(consuming, producer, until_idle)
                self._sending.finish()
            finally:
                self._sending.disconnect()
            self._connected(False)

    def _loop(self, consuming: Connection, producer: Producer, until_idle: bool) -> None:
        while not self.stopping.is_set():
            self.health.beat()
            self._keep_alive()
            waited_in_vain = not self._drain(consuming)
            self._handle_buffer(producer)
            if waited_in_vain:  # nothing else to do: wait for the confirms, mark at once
                self._sending.wait_for_confirms()
            else:
                self._sending.collect()
            self._sending.mark_due(idle=waited_in_vain)
            now = time.monotonic()
            self._sending.publish_left_over(now)
            self._refresh_stats(now)
            if waited_in_vain or now - self._last_sweep >= SWEEP_EVERY_SECONDS:
                self._last_sweep = now
                fired = self._sweep()
                if not fired and until_idle and waited_in_vain and self._idle(consuming):
                    return

    @staticmethod
    def _heartbeats(*connections: Connection) -> None:
        for connection in connections:
            broker.keep_alive(connection)

    def _connected(self, up: bool) -> None:
        self.health.broker_connected = up
        m.BROKER_CONNECTED.set(1 if up else 0)

    def _database_answers(self) -> bool:
        try:
            with self.app.engine.connect() as db:
                db.exec_driver_sql("SELECT 1")
        except SQLAlchemyError:
            return False
        return True

    def _refresh_stats(self, now: float) -> None:
        if now - self._last_stats < STATS_EVERY_SECONDS:
            return
        self._last_stats = now
        try:
            with self.app.engine.connect() as db:
                backlog, oldest = outbox.outbox_stats(db)
                due, overdue = timers.timer_stats(db, self.app.clock.today())
                if now - self._last_states >= STATES_EVERY_SECONDS:
                    self._last_states = now
                    counts = registrations.count_by_state(db)
                    for state in State:
                        m.REGISTRATIONS.labels(state.value).set(counts.get(state.value, 0))
        except SQLAlchemyError as error:
            log.warning("stats_failed", error=repr(error))
            return
        m.OUTBOX_BACKLOG.set(backlog)
        age = (self.app.clock.now() - oldest).total_seconds() if oldest else 0.0
        m.OUTBOX_OLDEST_SECONDS.set(max(age, 0.0))
        m.TIMERS_DUE.set(due)
        m.TIMERS_OVERDUE.set(overdue)

    def _drain(self, consuming: Connection) -> bool:
        """Wait for a delivery unless some are in hand already, then take whatever else is
        already there, up to a batch. (Deliveries get into the buffer elsewhere too: reading
        a connection for its heartbeats reads its deliveries. Waiting for one more with the
        whole prefetch window in hand would wait for nothing: the broker sends no more until
        the batch is acked.)"""
        if not self._buffer:
            try:
                consuming.drain_events(timeout=POLL_SECONDS)
            except (TimeoutError, socket.timeout):  # noqa: UP041 - transports raise either
                return False
        batch = self.app.settings.batch_size
        # Up to a batch of what has arrived already, without waiting for more. Under load, what
        # arrived while the last batch was in hand makes the next batch; at a steady rate, any
        # wait for company (2 ms, measured) delays every message more than the bigger batch
        # saves, and a wait for "the next delivery" would keep the batch open (and its first
        # message waiting) until it is full.
        broker.read_arrived(consuming, enough=lambda: len(self._buffer) >= batch)
        return True

    def _idle(self, consuming: Connection) -> bool:
        queue = self.app.topology.inbound(consuming.default_channel)
        _name, ready, _consumers = queue.queue_declare(passive=True)
        with self.app.engine.connect() as db:
            backlog = outbox.outbox_backlog(db)
        return not ready and not self._buffer and not backlog

    def _handle_buffer(self, producer: Producer) -> None:
        # On a stop request the batch in hand is finished; the rest stay unacked and the broker
        # hands them to another replica (or to this one after its restart).
        size = self.app.settings.batch_size
        while self._buffer and not self.stopping.is_set():
            batch, self._buffer[:size] = self._buffer[:size], []
            self._sending.collect()  # what the broker has confirmed by now goes with this batch
            marks = self._sending.take_marks()
            handed: deliveries.Handed | None = None
            try:
                handed = self._deliveries.handle(batch, producer, marks)
            finally:
                if handed is None or not handed.marked:  # kept for the next transaction
                    self._sending.give_back(marks)
            self._sending.send(handed.events)

    def _sweep_sent(self, events: list[Outgoing]) -> None:
        self._sending.send(events)
        self._keep_alive()  # a sweep of a million timers takes minutes: no silence that long

    def _sweep(self) -> int:
        def fired(due: timers.DueTimer, handled: handling.Handled) -> None:
            m.TIMERS_FIRED.labels(due.timer.kind).inc()
            log.info(
                "timer_fired",
                kind=due.timer.kind,
                deadline=due.timer.deadline.isoformat(),
                registration_number=handled.registration_number,
                events=list(handled.events),
            )

        try:
            return sweep.sweep(
                self.app.shell,
                self.app.context(),
                self.app.clock,
                fired,
                self._sweep_sent,
                workers=self.app.settings.sweep_workers,
            )
        except SQLAlchemyError as error:
            # The timers stay due; the next sweep fires them.
            self._database_away("sweep_failed", error)
            return 0

    def _database_away(self, event: str, error: SQLAlchemyError) -> None:
        m.RETRIES.labels(retrying.cause(error) or "database_error").inc()
        log.warning(event, error=repr(error))
        self.stopping.wait(DATABASE_PAUSE_SECONDS)
