"""The engine's loop: one broker session after another, and in each, turn after turn: take what
has arrived, handle it in one transaction, ack, publish its events, then the periodic work.

A lost broker connection ends the session; the loop reconnects with backoff, declares the
topology again and consumes again. Deliveries not yet acked are redelivered by the broker, and
the inbox makes the second handling a no-op where the first had committed. A stop request (a
signal) finishes the batch in hand and what it committed, then the loop ends.
"""

from __future__ import annotations

import functools
import gc
import signal
import time
from types import FrameType

from kombu.connection import Connection
from kombu.messaging import Consumer, Producer
from sqlalchemy.exc import SQLAlchemyError

from worker.adapters import broker
from worker.adapters.store import port
from worker.bootstrap import App
from worker.consumer import gauges, periodic, rescheduling, retention
from worker.consumer import sweep as sweeping
from worker.consumer.arrivals import Arrivals
from worker.consumer.inbound import Inbound
from worker.consumer.outbound import Outbound
from worker.contracts.envelope import Carried, Outgoing
from worker.observability import health, logs, tracing
from worker.observability import metrics as m
from worker.service import retrying, unit_of_work

RECONNECT_FIRST_SECONDS = 0.5
RECONNECT_MAX_SECONDS = 30.0
DATABASE_PAUSE_SECONDS = 1.0  # after the relay or the sweep found the database away
STOP_POLL_SECONDS = 0.05  # how soon a pause notices a stop request
# Periodic work, in seconds between runs.
SWEEP_EVERY = 1.0  # and whenever the queue is idle
RELAY_EVERY = 1.0  # left-over events of other processes, even when this one made none
MARK_CHECK_EVERY = 0.05  # a look for confirmed events no batch took along (outbound's limit)
BACKLOG_EVERY = 10.0
STATES_EVERY = 60.0
KEEP_ALIVE_EVERY = 1.0  # py-amqp checks heartbeats "on the order of once per second"

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


class Loop:
    def __init__(self, app: App) -> None:
        self.app = app
        settings = app.settings
        self.stopping = StopFlag()
        self.arrivals = Arrivals(settings.batch_size)
        self.outbound = Outbound(
            app.store,
            app.clock,
            app.capabilities,
            settings.shutdown_grace_seconds,
            self._database_away,
            app.tracing,
        )
        policy = retrying.policy(self._retried, settings.retry_attempts, settings.retry_max_seconds)
        self.inbound = Inbound(app, policy, join=self.outbound.ride_along)
        self.health = health.Health(
            liveness_seconds=settings.liveness_seconds,
            database_ok=app.store.answers,
            schema_at_head=app.store.is_at_head,
        )
        self.rescheduling = rescheduling.Rescheduling(app)
        self.periodic = periodic.Periodic()
        self._sweep = self.periodic.every(SWEEP_EVERY, self._sweep_due)
        self.periodic.every(MARK_CHECK_EVERY, self.outbound.mark_overdue)
        self.periodic.every(RELAY_EVERY, self.outbound.flush)
        self.periodic.every(BACKLOG_EVERY, lambda: gauges.refresh_backlog(app.store, app.clock))
        self.periodic.every(STATES_EVERY, lambda: gauges.refresh_states(app.store))
        self.retention = retention.Retention(app)
        if not app.store.concurrent:  # SQLite: a batch per turn, a pass every so often
            self.periodic.every(retention.EVERY_SECONDS, self.retention.step)
            self.periodic.every(retention.TURN_SECONDS, self._retention_step)
        self._keep_alive = periodic.Every(KEEP_ALIVE_EVERY, lambda: None)

    @staticmethod
    def _retried(cause: str) -> None:
        m.RETRIES.labels(cause).inc()
        log.warning("retrying", cause=cause)

    def install_signal_handlers(self) -> None:
        def stop(signum: int, _frame: FrameType | None) -> None:
            # Only a flag: the handler runs between two bytecodes of the main thread, which may
            # hold a lock at that moment (the log writer's); taking it again would hang.
            self.stopping.signal = signal.Signals(signum).name
            self.stopping.set()

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)

    def serve_http(self) -> None:
        """Raises OSError when the port is taken."""
        port = self.app.settings.metrics_port
        if port:
            health.serve(self.health, port)
            log.info("http_listening", port=port, paths=["/metrics", "/healthz", "/readyz"])

    def run(self, *, until_idle: bool = False) -> int:
        if self.app.store.concurrent:
            self.retention.start()
        try:
            self._run(until_idle)
        finally:
            self.retention.stop()
        if self.stopping.signal:
            log.info("stop_requested", signal=self.stopping.signal)
        log.info("worker_stopped")
        return 0

    def _run(self, until_idle: bool) -> None:
        delay = RECONNECT_FIRST_SECONDS
        while not self.stopping.is_set():
            try:
                self._session(until_idle)
                break
            except broker.RECOVERABLE as error:
                self._connected(False)
                self.arrivals.clear()  # unacked: the broker delivers them again
                self.outbound.mark_sent()  # what the broker confirmed before it went away
                if isinstance(error, broker.ConsumerCancelled):
                    # The queue was deleted or moved: declared again and consumed anew.
                    log.warning("consumer_cancelled", error=repr(error), retry_in_s=delay)
                else:
                    log.warning("broker_connection_lost", error=repr(error), retry_in_s=delay)
                if self.stopping.wait(delay):
                    break
                delay = min(delay * 2, RECONNECT_MAX_SECONDS)

    def _session(self, until_idle: bool) -> None:
        settings, topo = self.app.settings, self.app.topology
        blocked, unblocked = self._blocked, self._unblocked
        with (
            broker.connect(settings) as consuming,
            broker.connect(
                settings, confirms=True, on_blocked=blocked, on_unblocked=unblocked
            ) as publishing,
            broker.connect(settings, on_blocked=blocked, on_unblocked=unblocked) as relaying,
        ):
            connections = (consuming, publishing, relaying)
            for connection in connections:
                connection.ensure_connection(max_retries=1)
            broker.declare(consuming, topo)
            broker.declare(publishing, topo)
            producer = Producer(publishing.default_channel)  # dead letters, one confirm each
            self.outbound.open(relaying, producer)
            consumer = Consumer(
                consuming.default_channel,
                queues=[topo.inbound],
                on_message=self.arrivals.add,
                prefetch_count=settings.prefetch,
            )
            self._keep_alive = self._heartbeats(connections)
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
                self.outbound.finish()
            finally:
                self.outbound.close()
            self._connected(False)

    def _heartbeats(self, connections: tuple[Connection, ...]) -> periodic.Every:
        """py-amqp sends heartbeats only when asked, on every connection: asked a few times per
        heartbeat interval, not on every turn (each ask reads all three connections)."""
        heartbeat = self.app.settings.heartbeat_seconds
        if not self.app.capabilities.heartbeats or not heartbeat:
            return periodic.Every(KEEP_ALIVE_EVERY, lambda: None)

        def keep_alive() -> None:
            for connection in connections:
                broker.keep_alive(connection)

        return periodic.Every(min(KEEP_ALIVE_EVERY, heartbeat / 4), keep_alive)

    def _loop(self, consuming: Connection, producer: Producer, until_idle: bool) -> None:
        while not self.stopping.is_set():
            self.health.beat()
            self._keep_alive.maybe()
            idle = not self.arrivals.drain(consuming)
            self._handle_arrived(producer)
            if idle:  # nothing else to do: wait for the confirms, mark at once, sweep
                self.outbound.wait_for_confirms()
                self.outbound.mark_sent()
                fired = self._sweep.run()
                if not fired and until_idle and self._idle(consuming):
                    return
            else:
                self.outbound.collect()
            self.periodic.run_due()

    def _handle_arrived(self, producer: Producer) -> None:
        # On a stop request the batch in hand is finished; the rest stay unacked and the broker
        # hands them to another replica (or to this one after its restart).
        while self.arrivals and not self.stopping.is_set():
            batch = self.arrivals.take()
            self.outbound.collect()  # what the broker has confirmed by now rides with this batch
            self.outbound.send(self.inbound.handle(batch, producer))

    def _idle(self, consuming: Connection) -> bool:
        queue = self.app.topology.inbound(consuming.default_channel)
        _name, ready, _consumers = queue.queue_declare(passive=True)
        return not ready and not self.arrivals and not self.app.store.outbox_backlog()

    def _connected(self, up: bool) -> None:
        self.health.broker_connected = up
        m.BROKER_CONNECTED.set(1 if up else 0)
        if not up:
            self._unblocked(quiet=True)  # a new session is told again

    def _blocked(self, reason: str) -> None:
        """RabbitMQ blocks publishing (a memory or disk alarm). The loop goes on consuming and
        committing; events wait in the outbox until it unblocks (README, Broker realities)."""
        if self.outbound.blocked is None:
            log.warning("broker_blocked", reason=reason)
        self.outbound.block(reason)
        self.health.broker_blocked = reason
        m.BROKER_BLOCKED.set(1)

    def _unblocked(self, quiet: bool = False) -> None:
        if self.outbound.blocked is not None and not quiet:
            log.info("broker_unblocked")
        self.outbound.unblock()
        self.health.broker_blocked = None
        m.BROKER_BLOCKED.set(0)

    def _retention_step(self) -> None:
        if self.retention.in_pass:
            self.retention.step()

    def _sweep_due(self) -> int:
        """Timers fired (and registrations rescheduled first, while a pass is due: R18)."""
        moved = self.rescheduling.move_on()
        try:
            return moved + sweeping.sweep(
                self.app.store,
                self.app.envelopes,
                self.app.context(),
                self.app.clock,
                self._fired,
                self._sweep_sent,
                workers=self.app.settings.sweep_workers,
                trace=self._timer_trace,
            )
        except SQLAlchemyError as error:
            self._database_away("sweep_failed", error)  # the timers stay due
            return 0

    @functools.cached_property
    def _timer_trace(self) -> unit_of_work.TimerTrace | None:
        """Each firing a span of its own, linked to the message that set the timer (#19)."""
        traces = self.app.tracing
        if not traces.on:
            return None

        def trace(due: port.DueTimer, number: str) -> Carried:
            span = traces.firing(due.timer.kind, number, due.traceparent)
            span.end()  # the transaction it fires in is the sweep's; this marks the moment
            return tracing.carried_by(span)

        return trace

    def _sweep_sent(self, events: list[Outgoing]) -> None:
        self.outbound.send(events)
        self._keep_alive.maybe()  # a sweep of a million timers takes minutes: no silence

    @staticmethod
    def _fired(due: port.DueTimer, result: unit_of_work.Result) -> None:
        m.TIMERS_FIRED.labels(due.timer.kind).inc()
        log.info(
            "timer_fired",
            kind=due.timer.kind,
            deadline=due.timer.deadline.isoformat(),
            registration_number=result.registration_number,
            events=list(result.events),
        )

    def _database_away(self, event: str, error: SQLAlchemyError) -> None:
        m.RETRIES.labels(retrying.cause(error) or "database_error").inc()
        log.warning(event, error=repr(error))
        self.stopping.wait(DATABASE_PAUSE_SECONDS)
