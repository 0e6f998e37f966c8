"""A batch's spans (#19), for the inbound side: one per message and one for its transaction.
Off the hot path's cost when tracing is off: nothing is made then."""

from __future__ import annotations

from dataclasses import dataclass, field

from kombu.message import Message as KombuMessage
from opentelemetry.trace import Span, Status, StatusCode

from worker.adapters import broker
from worker.contracts.envelope import Carried
from worker.observability import tracing
from worker.service import intake, unit_of_work

Item = tuple[KombuMessage, broker.Delivery, intake.Accepted]


@dataclass
class Traced:
    """A batch's spans (#19): one per message, a child of the trace it carried, and one for the
    transaction linked to them all; the messages handed on carry their own span's context, so
    the events they cause (and the timers they set) continue the trace. Nothing when off."""

    verdicts: list[intake.Accepted]
    spans: list[Span] = field(default_factory=list)
    batch: Span | None = None
    carried: list[Carried] | None = None  # per message, its span's context, for its events

    @classmethod
    def start(cls, traces: tracing.Tracing, accepted: list[Item]) -> Traced:
        verdicts = [verdict for _message, _delivery, verdict in accepted]
        if not traces.on:
            return cls(verdicts)
        spans = [
            traces.processing(v.carried, v.id, v.type, v.source, v.routing_key) for v in verdicts
        ]
        carried = [tracing.carried_by(span) for span in spans]
        return cls(verdicts, spans, traces.transaction(spans, "transaction"), carried)

    @property
    def ids(self) -> dict[str, str]:
        if self.batch is None or not self.batch.is_recording():
            return {}
        return tracing.ids(self.batch)

    def span(self, index: int) -> Span | None:
        return self.spans[index] if self.spans else None

    def end(self, results: list[unit_of_work.Result]) -> None:
        if self.batch is None:
            return
        for span, result in zip(self.spans, results, strict=True):
            if not span.is_recording():  # not sampled: nothing to say
                span.end()
                continue
            span.set_attribute("kmo.outcome", result.outcome)
            if result.registration_number:
                span.set_attribute("kmo.registration_number", result.registration_number)
            if result.reason:
                span.set_attribute("kmo.ignored_reason", result.reason)
            span.set_attribute("kmo.events", list(result.events))
            span.end()
        self.batch.end()

    def failed(self, error: Exception) -> None:
        for span in (*self.spans, *([self.batch] if self.batch else [])):
            span.set_status(Status(StatusCode.ERROR, type(error).__name__))
            span.end()
