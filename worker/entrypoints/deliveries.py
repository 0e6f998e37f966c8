"""Deliveries in, decisions committed, deliveries acked: the consumer's half of the loop.

A batch of deliveries is checked one by one (bad input is dead-lettered at once), then handled in
one transaction, then acked. A batch that fails for a reason retrying cannot mend is handled
again message by message, so one bad message cannot hold back the others; one that still fails is
dead-lettered `processing_failed`. Transient failures are retried with the bound of
`KMO_RETRY_ATTEMPTS` and `KMO_RETRY_MAX_SECONDS`.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import structlog
from kombu.message import Message as KombuMessage
from kombu.messaging import Producer
from tenacity import Retrying

from worker.adapters import broker
from worker.bootstrap import App
from worker.contracts.envelope import Outgoing
from worker.observability import logs
from worker.observability import metrics as m
from worker.service import handling, intake, retrying

log = logs.get(__name__)
Item = tuple[KombuMessage, broker.Delivery, intake.Accepted]


@dataclass(frozen=True)
class Handed:
    """The events a batch committed, and whether the `sent` marks went with them."""

    events: list[Outgoing]
    marked: bool


class Deliveries:
    def __init__(self, app: App, retrying_policy: Retrying) -> None:
        self.app = app
        self.settings = app.settings
        self._retrying = retrying_policy

    def handle(
        self, messages: list[KombuMessage], producer: Producer, sent: Sequence[str] = ()
    ) -> Handed:
        """Handle a batch; `sent` (ids of events published since the last commit) is marked
        in the batch's transaction when the batch commits whole."""
        started = time.perf_counter()
        settings = self.settings
        accepted: list[Item] = []
        for message in messages:
            delivery = broker.delivery_of(message)
            verdict = intake.check(
                delivery.body,
                delivery.properties,
                self.app.validators,
                settings,
                settings.max_message_bytes,
                delivery.headers,
            )
            if isinstance(verdict, intake.Rejected):
                with structlog.contextvars.bound_contextvars(
                    message_id=verdict.id, type=verdict.type
                ):
                    self._dead_letter(producer, delivery, verdict.reason, verdict.error)
                message.ack()
            else:
                accepted.append((message, delivery, verdict))
        if not accepted:
            return Handed([], marked=False)
        # Whatever is logged while the batch is in hand (a retry, say) names the batch.
        batch_ids = {
            "batch_size": len(accepted),
            "batch_first_id": accepted[0][2].id,
            "batch_last_id": accepted[-1][2].id,
        }
        try:
            with structlog.contextvars.bound_contextvars(**batch_ids):
                committed = self._retrying(
                    lambda: handling.handle_batch(
                        self.app.shell,
                        [a[2] for a in accepted],
                        self.app.context(),
                        self.app.clock.now(),
                        sent,
                    )
                )
        except Exception as error:
            return Handed(self._batch_failed(accepted, error, producer), marked=False)
        self._ack(messages)  # only now: the transaction has committed
        seconds = time.perf_counter() - started
        for (_message, _delivery, verdict), result in zip(accepted, committed.handled, strict=True):
            self._handled(verdict, result, seconds)
        return Handed(committed.events, marked=True)

    def _ack(self, messages: list[KombuMessage]) -> None:
        """Ack a whole batch. On AMQP one `multiple` ack of the last delivery covers every
        earlier one on the channel (the dead-lettered ones were acked already, which `multiple`
        allows); the embedded transport ignores `multiple`, so it gets one ack each."""
        unacked = [m for m in messages if not m.acknowledged]
        if not unacked:
            return
        if self.settings.is_embedded_broker:
            for message in unacked:
                message.ack()
            return
        last = unacked[-1]
        last.channel.basic_ack(last.delivery_tag, multiple=True)
        for message in unacked:
            message._state = "ACK"  # kombu's own record, so nothing acks these twice

    def _batch_failed(
        self,
        accepted: list[Item],
        error: Exception,
        producer: Producer,
    ) -> list[Outgoing]:
        if len(accepted) > 1 and retrying.cause(error) is None:
            # Something in the batch cannot be handled: find it by handling them one by one.
            log.warning("batch_failed", size=len(accepted), error=repr(error))
            return [event for item in accepted for event in self._handle_one(item, producer)]
        # One message that cannot be handled, or the database away past the retry budget.
        for message, delivery, verdict in accepted:
            with structlog.contextvars.bound_contextvars(message_id=verdict.id, type=verdict.type):
                log.error("processing_failed", error=repr(error))
                self._dead_letter(producer, delivery, "processing_failed", repr(error))
            message.ack()
        return []

    def _handle_one(self, item: Item, producer: Producer) -> list[Outgoing]:
        message, _delivery, verdict = item
        started = time.perf_counter()
        try:
            with structlog.contextvars.bound_contextvars(message_id=verdict.id, type=verdict.type):
                committed = self._retrying(
                    lambda: handling.handle(
                        self.app.shell, verdict, self.app.context(), self.app.clock.now()
                    )
                )
        except Exception as error:
            return self._batch_failed([item], error, producer)
        message.ack()
        self._handled(verdict, committed.handled[0], time.perf_counter() - started)
        return committed.events

    def _handled(self, verdict: intake.Accepted, result: handling.Handled, seconds: float) -> None:
        m.MESSAGES.labels(verdict.type, result.outcome).inc()
        m.HANDLING_SECONDS.observe(seconds)
        log.info(
            "message_handled",
            message_id=verdict.id,
            type=verdict.type,
            outcome=result.outcome,
            registration_number=result.registration_number,
            rule=result.rule,
            events=list(result.events),
            duration_ms=round(seconds * 1000, 2),
        )

    def _dead_letter(
        self, producer: Producer, delivery: broker.Delivery, reason: str, error: str
    ) -> None:
        broker.dead_letter(producer, delivery, reason, error, self.app.clock.now())
        m.DEAD_LETTERS.labels(reason).inc()
        m.MESSAGES.labels(delivery.routing_key or "unknown", "dead_lettered").inc()
        log.warning("message_dead_lettered", reason=reason, error=error)
