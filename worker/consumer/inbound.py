"""The inbound side: deliveries checked, handled in one transaction, then acked.

A batch of deliveries is checked one by one (bad input is dead-lettered at once), then handled
in one transaction, then acked: only the engine acks, and only after the commit. A batch that
fails for a reason retrying cannot mend is handled again message by message, so one bad message
cannot hold back the others; one that still fails is dead-lettered `processing_failed`.
Transient failures are retried within `KMO_RETRY_ATTEMPTS` and `KMO_RETRY_MAX_SECONDS`.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable

import orjson
import structlog
from kombu.message import Message as KombuMessage
from kombu.messaging import Producer
from opentelemetry.trace import Span
from tenacity import Retrying

from worker.adapters import broker
from worker.adapters.store import port
from worker.bootstrap import App
from worker.consumer.traced import Item, Traced
from worker.contracts import dead_letters
from worker.contracts.envelope import Carried, Outgoing
from worker.observability import logs, tracing
from worker.observability import metrics as m
from worker.service import intake, retrying, unit_of_work

log = logs.get(__name__)


class Inbound:
    def __init__(
        self, app: App, retrying_policy: Retrying, join: unit_of_work.Join | None = None
    ) -> None:
        """`join`: adds its own writes to every transaction (the outbound side's marks)."""
        self.app = app
        self._retrying = retrying_policy
        self._join = join

    def handle(self, messages: list[KombuMessage], producer: Producer) -> list[Outgoing]:
        """The events the batch committed, to be published."""
        started = time.perf_counter()
        accepted: list[Item] = []
        for message in messages:
            delivery = broker.delivery_of(message)
            verdict = intake.check(
                delivery.body,
                delivery.properties,
                self.app.validators,
                self.app.settings,
                delivery.headers,
                delivery.routing_key,
            )
            if isinstance(verdict, intake.Rejected):
                with structlog.contextvars.bound_contextvars(
                    message_id=verdict.id, type=verdict.type
                ):
                    self._dead_letter(producer, delivery, verdict.reason, verdict.error)
                message.ack()
            else:
                if verdict.unknown:  # accepted, a field this version does not know ignored
                    m.UNKNOWN_FIELDS.labels(verdict.type).inc(len(verdict.unknown))
                accepted.append((message, delivery, verdict))
        if not accepted:
            return []
        # Whatever is logged while the batch is in hand (a retry, say) names the batch.
        batch_ids = {
            "batch_size": len(accepted),
            "batch_first_id": accepted[0][2].id,
            "batch_last_id": accepted[-1][2].id,
        }
        traced = Traced.start(self.app.tracing, accepted)
        try:
            with structlog.contextvars.bound_contextvars(**batch_ids, **traced.ids):
                committed = self._retrying(self._unit(traced.verdicts, traced.carried))
        except Exception as error:
            traced.failed(error)
            return self._batch_failed(accepted, error, producer)
        broker.ack(messages, self.app.capabilities)  # only now: the transaction has committed
        seconds = time.perf_counter() - started
        ids = [
            self._handled(traced.verdicts[index], result, seconds, traced.span(index))
            for index, result in enumerate(committed.results)
        ]
        self._critical(traced.verdicts, ids, self.app.clock.now())
        traced.end(committed.results)
        return committed.events

    def _unit(
        self, messages: list[intake.Accepted], carried: list[Carried] | None = None
    ) -> Callable[[], unit_of_work.Committed]:
        app = self.app
        return lambda: unit_of_work.handle_messages(
            app.store, app.envelopes, messages, app.context(), app.clock.now(), self._join, carried
        )

    def _batch_failed(
        self, accepted: list[Item], error: Exception, producer: Producer
    ) -> list[Outgoing]:
        if len(accepted) > 1 and retrying.cause(error) is None:
            # Something in the batch cannot be handled: find it by handling them one by one.
            log.warning("batch_failed", size=len(accepted), error=repr(error))
            return [event for item in accepted for event in self._handle_one(item, producer)]
        # One message that cannot be handled, or the database away past the retry budget.
        reason: dead_letters.Reason = (
            "numbers_exhausted"
            if isinstance(error, port.NumbersExhaustedError)
            else "processing_failed"
        )
        for message, delivery, verdict in accepted:
            with structlog.contextvars.bound_contextvars(message_id=verdict.id, type=verdict.type):
                log.error(reason, error=repr(error))
                self._dead_letter(producer, delivery, reason, repr(error))
            message.ack()
        return []

    def _handle_one(self, item: Item, producer: Producer) -> list[Outgoing]:
        message, _delivery, verdict = item
        started = time.perf_counter()
        try:
            with structlog.contextvars.bound_contextvars(message_id=verdict.id, type=verdict.type):
                committed = self._retrying(self._unit([verdict]))
        except Exception as error:
            return self._batch_failed([item], error, producer)
        message.ack()
        seconds = time.perf_counter() - started
        ids = self._handled(verdict, committed.results[0], seconds)
        self._critical([verdict], [ids], self.app.clock.now())
        return committed.events

    def _handled(
        self,
        verdict: intake.Accepted,
        result: unit_of_work.Result,
        seconds: float,
        span: Span | None = None,
    ) -> dict[str, str]:
        """Count and log one message; its span's ids where it is sampled (an unsampled one is
        exported nowhere: no ids to point at)."""
        m.MESSAGES.labels(verdict.type, result.outcome).inc()
        if result.reason:
            m.IGNORED.labels(result.reason).inc()
        elif result.rule == "R19":
            m.REGISTRATIONS_ERASED.labels("on_request").inc()
        m.HANDLING_SECONDS.observe(seconds)
        ids = tracing.ids(span) if span is not None and span.is_recording() else {}
        log.info(
            "message_handled",
            message_id=verdict.id,
            type=verdict.type,
            outcome=result.outcome,
            registration_number=result.registration_number,
            rule=result.rule,
            events=list(result.events),
            duration_ms=round(seconds * 1000, 2),
            **ids,
        )
        return ids

    @staticmethod
    def _critical(
        verdicts: list[intake.Accepted], ids: list[dict[str, str]], committed_at: dt.datetime
    ) -> None:
        """Sent to committed, for the batch at once; each sampled one's trace as its exemplar."""
        m.CRITICAL_SECONDS.observe_all(
            (max(0.0, (committed_at - v.sent_at).total_seconds()), exemplar or None)
            for v, exemplar in zip(verdicts, ids, strict=True)
            if v.sent_at is not None
        )

    def _dead_letter(
        self,
        producer: Producer,
        delivery: broker.Delivery,
        reason: dead_letters.Reason,
        error: str,
    ) -> None:
        now = self.app.clock.now()
        span = self._dead_letter_span(delivery, reason)
        try:
            broker.dead_letter(producer, delivery, reason, error, now)
        finally:
            if span is not None:
                span.end()
        m.DEAD_LETTERS.labels(reason).inc()
        m.MESSAGES.labels(m.inbound_type(delivery.routing_key), "dead_lettered").inc()
        ids = tracing.ids(span) if span is not None else {}
        log.warning("message_dead_lettered", reason=reason, error=error, **ids)
        self._record_dead_letter(delivery, reason, error, now)

    def _dead_letter_span(self, delivery: broker.Delivery, reason: str) -> Span | None:
        """A span for the dead-lettering, in the trace the message carried if it could be read."""
        traces = self.app.tracing
        if not traces.on:
            return None
        try:
            document = orjson.loads(delivery.body)
        except orjson.JSONDecodeError:
            document = None
        readable = document if isinstance(document, dict) else {}
        carried = intake.carried(readable, delivery.headers)
        message_id = readable.get("id") if isinstance(readable.get("id"), str) else None
        return traces.dead_lettering(carried, reason, message_id)

    def _record_dead_letter(
        self, delivery: broker.Delivery, reason: str, error: str, now: dt.datetime
    ) -> None:
        """Beside the registration it names, for `explain`. The queue holds the message itself,
        so a database that cannot take the record now costs only that line in `explain`."""
        subject = intake.subject_of(delivery.body)
        row = {
            "message_id": subject.message_id,
            "type": delivery.routing_key[:60] or None,
            "reason": reason,
            "error": logs.mask(error)[:2000],
            "enterprise_number": subject.enterprise_number,
            "service": subject.service,
            "dead_lettered_at": now,
        }
        try:
            self.app.store.record_dead_letter(row)
        except Exception as failure:  # the dead letter itself is safe on its queue
            log.warning("dead_letter_not_recorded", error=repr(failure))
