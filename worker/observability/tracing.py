"""OpenTelemetry traces (#19): one request followed from the desk through the worker to the
mailers, across the broker and across the years a timer waits.

Off unless configured, by the standard variables: `OTEL_TRACES_EXPORTER=otlp` or an OTLP endpoint
(`OTEL_EXPORTER_OTLP_ENDPOINT`, `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`), and not
`OTEL_SDK_DISABLED=true`. The SDK reads the rest itself (endpoint, headers, the sampler
`OTEL_TRACES_SAMPLER`/`_ARG`, `OTEL_SERVICE_NAME`, `OTEL_RESOURCE_ATTRIBUTES`). Off, nothing here
runs: the engine asks `on` first, so the hot path pays one attribute read per batch.

The context travels as CloudEvents' Distributed Tracing extension (`traceparent`, `tracestate`
in the envelope, or in the AMQP headers), W3C Trace Context strings. Spans follow the messaging
semantic conventions (`messaging.system=rabbitmq`, destination, operation, message id) and the
CloudEvents ones (`cloudevents.event_id`, ...).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    SimpleSpanProcessor,
    SpanExporter,
)
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Link, Span, SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from worker.config import Settings
from worker.contracts.envelope import Carried

SERVICE = "kmo-worker"
SYSTEM = "rabbitmq"
PROPAGATOR = TraceContextTextMapPropagator()


class Tracing:
    """The worker's tracer, or none (`on` False): every method is then left uncalled."""

    def __init__(self, provider: TracerProvider | None = None) -> None:
        self.provider = provider
        self.on = provider is not None
        self._tracer = provider.get_tracer(SERVICE) if provider is not None else None

    @property
    def tracer(self) -> trace.Tracer:
        assert self._tracer is not None, "tracing is off: ask `on` first"
        return self._tracer

    def shutdown(self) -> None:
        """Export what is still buffered (on the way out)."""
        if self.provider is not None:
            self.provider.shutdown()

    # -- spans of the engine ------------------------------------------------------------------

    def processing(
        self,
        carried: Carried | None,
        message_id: str,
        type_name: str,
        source: str,
        routing_key: str,
    ) -> Span:
        """A consumed message's span, a child of the context it carried (if any). Its
        attributes are set only where it is sampled: most are not, and cost no more."""
        span = self.tracer.start_span(
            "process kmo.inbound", context=parent(carried), kind=SpanKind.CONSUMER
        )
        if span.is_recording():
            span.set_attributes(
                {
                    "messaging.system": SYSTEM,
                    "messaging.operation.type": "process",
                    "messaging.operation.name": "process",
                    "messaging.destination.name": "kmo.inbound",
                    "messaging.rabbitmq.destination.routing_key": routing_key,
                    "messaging.message.id": message_id,
                    "cloudevents.event_id": message_id,
                    "cloudevents.event_type": type_name,
                    "cloudevents.event_source": source,
                    "cloudevents.event_spec_version": "1.0",
                }
            )
        return span

    def transaction(self, spans: Sequence[Span], what: str) -> Span:
        """One database transaction for a batch, linked to each message or timer in it."""
        links = [Link(span.get_span_context()) for span in spans]
        return self.tracer.start_span(
            f"kmo.worker {what}",
            links=links,
            attributes={"messaging.batch.message_count": len(spans)},
        )

    def publishing(self, destination: str, carried: Iterable[str | None], count: int) -> Span:
        """A publish of events, linked to the contexts they carry (where it is sampled)."""
        span = self.tracer.start_span(f"publish {destination}", kind=SpanKind.PRODUCER)
        if span.is_recording():
            span.set_attributes(
                {
                    "messaging.system": SYSTEM,
                    "messaging.operation.type": "send",
                    "messaging.operation.name": "publish",
                    "messaging.destination.name": destination,
                    "messaging.batch.message_count": count,
                }
            )
            for context in map(span_context, carried):
                if context is not None:
                    span.add_link(context)
        return span

    def dead_lettering(self, carried: Carried | None, reason: str, message_id: str | None) -> Span:
        span = self.tracer.start_span(
            "publish kmo.dead-letter",
            context=parent(carried),
            kind=SpanKind.PRODUCER,
            attributes={
                "messaging.system": SYSTEM,
                "messaging.operation.type": "send",
                "messaging.destination.name": "kmo.dead-letter",
                "messaging.message.id": message_id or "",
                "kmo.dead_letter.reason": reason,
            },
        )
        span.set_status(Status(StatusCode.ERROR, reason))
        return span

    def firing(self, kind: str, registration_number: str, cause: str | None) -> Span:
        """A timer's firing: a trace of its own (years may have passed), linked to the message
        that set the timer."""
        context = span_context(cause)
        return self.tracer.start_span(
            f"fire {kind}",
            context=Context(),  # a new trace
            links=[Link(context)] if context is not None else (),
            attributes={"kmo.timer.kind": kind, "kmo.registration_number": registration_number},
        )


NO_PARENT = Context()  # a message that carries no trace starts one (and the SDK looks no further)


def parent(carried: Carried | None) -> Context:
    if carried is None:
        return NO_PARENT
    carrier = {"traceparent": carried.traceparent}
    if carried.tracestate:
        carrier["tracestate"] = carried.tracestate
    return PROPAGATOR.extract(carrier)


def span_context(traceparent: str | None) -> trace.SpanContext | None:
    if not traceparent:
        return None
    found = trace.get_current_span(PROPAGATOR.extract({"traceparent": traceparent}))
    context = found.get_span_context()
    return context if context.is_valid else None


def carried_by(span: Span) -> Carried:
    """The span's context, as a message carries it onward (W3C `traceparent`, version 00,
    written here rather than by the propagator: it runs for every message, sampled or not)."""
    context = span.get_span_context()
    traceparent = f"00-{context.trace_id:032x}-{context.span_id:016x}-{context.trace_flags:02x}"
    state = context.trace_state
    return Carried(traceparent, state.to_header() if state else None)


def ids(span: Span) -> dict[str, str]:
    """`trace_id` and `span_id` for a log line."""
    context = span.get_span_context()
    return {"trace_id": f"{context.trace_id:032x}", "span_id": f"{context.span_id:016x}"}


def from_settings(settings: Settings) -> Tracing:
    """Tracing as the standard variables configure it: spans exported by OTLP over HTTP in
    batches, off the loop's thread."""
    if not settings.tracing:
        return Tracing()
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    return with_exporter(OTLPSpanExporter(), batched=True)


def with_exporter(exporter: SpanExporter, *, batched: bool = False) -> Tracing:
    provider = TracerProvider(resource=Resource.create({"service.name": SERVICE}))
    processor = BatchSpanProcessor(exporter) if batched else SimpleSpanProcessor(exporter)
    provider.add_span_processor(processor)
    return Tracing(provider)


def in_memory() -> tuple[Tracing, InMemorySpanExporter]:
    """For tests: every span kept in memory as it ends (the SDK's own exporter)."""
    exporter = InMemorySpanExporter()
    return with_exporter(exporter), exporter
