"""OpenTelemetry (#19) through the real RabbitMQ and PostgreSQL, with the SDK's in-memory exporter:
a request, its declaration and its audit, each sent in a trace of the desk's or the bureau's, make
one connected trace per message from publish to event; the event's `traceparent` continues it; a
timer fired years later links to the message that set it; a dead letter is a span of its trace."""

from __future__ import annotations

import datetime as dt
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from tests.conftest import TODAY, Bus
from tests.integration.test_operations import free_port
from worker import config
from worker import samples as s
from worker.bootstrap import bootstrap
from worker.consumer.loop import Loop
from worker.observability import metrics as m
from worker.observability import tracing
from worker.service.clock import Clock

pytestmark = pytest.mark.integration
KEY = s.key("1543301276")
DESK_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
BUREAU_TRACE = "0af7651916cd43dd8448eb211c80319c"


@pytest.fixture
def traced() -> Iterator[tuple[tracing.Tracing, InMemorySpanExporter]]:
    traces, exporter = tracing.in_memory()
    yield traces, exporter
    traces.shutdown()


def _run(settings: config.Settings, traces: tracing.Tracing, today: dt.date = TODAY) -> None:
    app = bootstrap(settings, Clock(today), traces=traces)
    assert Loop(app).run(until_idle=True) == 0
    app.store.dispose()


def _sent_in(trace_id: str, document: dict[str, Any], span_id: str) -> dict[str, Any]:
    """As a publisher that traces sends it: CloudEvents' Distributed Tracing extension."""
    return {**document, "traceparent": f"00-{trace_id}-{span_id}-01", "tracestate": "desk=1"}


def _named(spans: tuple[ReadableSpan, ...], name: str) -> list[ReadableSpan]:
    return [span for span in spans if span.name == name]


def _hex(number: int, width: int) -> str:
    return f"{number:0{width}x}"


def test_a_request_to_its_registration_is_one_trace_per_message_continued_by_the_event(
    settings: config.Settings, bus: Bus, traced: tuple[tracing.Tracing, InMemorySpanExporter]
) -> None:
    traces, exporter = traced
    request = _sent_in(DESK_TRACE, s.request(KEY), "00f067aa0ba902b7")
    declaration = _sent_in(DESK_TRACE, s.declaration(KEY, TODAY), "00f067aa0ba902b8")
    audit = _sent_in(BUREAU_TRACE, s.audit(KEY, TODAY), "b7ad6b7169203331")
    for document in (request, declaration, audit):
        bus.publish(document)
    _run(settings, traces)
    spans = exporter.get_finished_spans()
    processed = {
        span.attributes["messaging.message.id"]: span
        for span in _named(spans, "process kmo.inbound")
    }  # type: ignore[index]
    assert set(processed) == {request["id"], declaration["id"], audit["id"]}
    for document, trace_id in ((request, DESK_TRACE), (audit, BUREAU_TRACE)):
        span = processed[document["id"]]
        assert _hex(span.context.trace_id, 32) == trace_id  # a child of the publisher's span
        assert span.parent is not None and span.parent.is_remote
        assert span.kind is SpanKind.CONSUMER
        assert span.attributes["messaging.system"] == "rabbitmq"
        assert span.attributes["cloudevents.event_type"] == document["type"]
    audited = processed[audit["id"]]
    assert audited.attributes["kmo.outcome"] == "handled"
    assert list(audited.attributes["kmo.events"]) == ["decision.registered"]
    # The event continues the audit's trace, from the worker's span.
    events = {event["type"]: event for event in bus.events()}
    registered = events["decision.registered"]
    assert registered["traceparent"] == (
        f"00-{BUREAU_TRACE}-{_hex(audited.context.span_id, 16)}-01"
    )
    assert registered["tracestate"] == "desk=1"
    # Each transaction linked to the messages of its batch (the three may arrive in one batch or
    # in several: the loop takes what has arrived), each message to one; one publish linked to
    # the events it sent.
    transactions = [s for s in spans if s.name == "kmo.worker transaction"]
    linked = [_hex(link.context.span_id, 16) for t in transactions for link in t.links]
    assert sorted(linked) == sorted(_hex(span.context.span_id, 16) for span in processed.values())
    published = [link for span in _named(spans, "publish kmo.events") for link in span.links]
    assert audited.context.span_id in {link.context.span_id for link in published}


def test_a_timer_fired_years_later_links_to_the_message_that_set_it(
    settings: config.Settings, bus: Bus, traced: tuple[tracing.Tracing, InMemorySpanExporter]
) -> None:
    traces, exporter = traced
    bus.publish(s.request(KEY))
    bus.publish(s.declaration(KEY, TODAY))
    bus.publish(_sent_in(BUREAU_TRACE, s.audit(KEY, TODAY), "b7ad6b7169203331"))
    _run(settings, traces)
    (audited,) = [
        span
        for span in _named(exporter.get_finished_spans(), "process kmo.inbound")
        if span.attributes["cloudevents.event_type"] == "audit.reported"
    ]
    bus.events()
    exporter.clear()
    # 90 days before the end of the five years: the notice.
    _run(settings, traces, today=dt.date(2031, 11, 2))
    (fired,) = _named(exporter.get_finished_spans(), "fire notice.expiring")
    (link,) = fired.links
    assert (link.context.trace_id, link.context.span_id) == (
        audited.context.trace_id,
        audited.context.span_id,
    )
    assert fired.context.trace_id != audited.context.trace_id  # a trace of its own
    (notice,) = [e for e in bus.events() if e["type"] == "notice.expiring"]
    assert notice["traceparent"].split("-")[1] == _hex(fired.context.trace_id, 32)


def test_a_dead_letter_is_a_span_of_the_trace_the_message_carried(
    settings: config.Settings, bus: Bus, traced: tuple[tracing.Tracing, InMemorySpanExporter]
) -> None:
    traces, exporter = traced
    broken = _sent_in(DESK_TRACE, s.declaration(KEY, TODAY), "00f067aa0ba902b9")
    broken["data"]["received_on"] = "not a date"
    bus.publish(broken)
    _run(settings, traces)
    (span,) = _named(exporter.get_finished_spans(), "publish kmo.dead-letter")
    assert _hex(span.context.trace_id, 32) == DESK_TRACE
    assert span.attributes["kmo.dead_letter.reason"] == "schema_violation"
    assert span.status.status_code is StatusCode.ERROR


def test_critical_time_is_measured_with_the_trace_as_its_exemplar(
    settings: config.Settings, bus: Bus, traced: tuple[tracing.Tracing, InMemorySpanExporter]
) -> None:
    traces, _exporter = traced
    waited = m.CRITICAL_SECONDS.sum
    two_seconds_ago = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=2)
    sent = {**s.request(KEY), "time": two_seconds_ago.isoformat()}
    bus.publish(_sent_in(DESK_TRACE, sent, "00f067aa0ba902b7"))
    port = free_port()
    app = bootstrap(settings.model_copy(update={"metrics_port": port}), traces=traces)
    loop = Loop(app)
    loop.serve_http()
    assert loop.run(until_idle=True) == 0
    app.store.dispose()
    asked = urllib.request.Request(
        f"http://127.0.0.1:{port}/metrics",
        headers={"Accept": "application/openmetrics-text; version=1.0.0"},
    )
    with urllib.request.urlopen(asked, timeout=5) as answer:
        exposition = answer.read().decode()
    with_exemplar = [
        line
        for line in exposition.splitlines()
        if line.startswith("kmo_message_critical_seconds_bucket") and "trace_id" in line
    ]
    assert any(f'trace_id="{DESK_TRACE}"' in line for line in with_exemplar)
    # Sent two seconds before it was published: at least that long from send to commit.
    assert 2.0 <= m.CRITICAL_SECONDS.sum - waited < 60.0
