"""Every Prometheus metric of the worker, defined once (names per the Prometheus conventions)."""

from __future__ import annotations

import bisect
import math
import threading
import time
from collections.abc import Iterable, Sequence
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.metrics_core import HistogramMetricFamily, Metric
from prometheus_client.samples import Exemplar

from worker.contracts.inbound import INBOUND

REGISTRY = CollectorRegistry(auto_describe=True)
OTHER = "other"  # the label of a type the contract does not know: label values stay a closed set


def inbound_type(name: str | None) -> str:
    """A `type` label for an untrusted routing key or CloudEvents type."""
    return name if name in INBOUND else OTHER


MESSAGES = Counter(
    "kmo_messages_consumed_total",
    "Inbound messages by type and outcome (handled, ignored, duplicate, dead_lettered).",
    ["type", "outcome"],
    registry=REGISTRY,
)
IGNORED = Counter(
    "kmo_messages_ignored_total",
    "Valid messages the rules answered with message.ignored, by reason (R11, R13).",
    ["reason"],
    registry=REGISTRY,
)
DEAD_LETTERS = Counter(
    "kmo_messages_dead_lettered_total",
    "Inbound messages moved to kmo.dead-letter, by reason.",
    ["reason"],
    registry=REGISTRY,
)
HANDLING_SECONDS = Histogram(
    "kmo_message_handling_seconds",
    "Time from delivery to commit of one inbound message.",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
    registry=REGISTRY,
)


class BatchHistogram:
    """A histogram observed a batch at a time, exposed like any other, with the last exemplar
    of each bucket: one lock per batch, where prometheus_client's takes two per sample (it
    cost the worker 1.2 % more instructions per message, docs/performance.md)."""

    def __init__(
        self, name: str, documentation: str, buckets: Sequence[float], registry: CollectorRegistry
    ) -> None:
        self.name, self.documentation = name, documentation
        self._bounds = (*buckets, math.inf)
        self._counts = [0] * len(self._bounds)
        self._exemplars: list[Exemplar | None] = [None] * len(self._bounds)
        self._sum = 0.0
        self._lock = threading.Lock()
        registry.register(self)

    def observe_all(self, samples: Iterable[tuple[float, dict[str, str] | None]]) -> None:
        """Each (value, exemplar labels or None)."""
        with self._lock:
            for value, exemplar in samples:
                i = bisect.bisect_left(self._bounds, value)
                self._counts[i] += 1
                self._sum += value
                if exemplar:
                    self._exemplars[i] = Exemplar(exemplar, value, time.time())

    @property
    def sum(self) -> float:
        return self._sum

    def describe(self) -> list[Metric]:
        return [HistogramMetricFamily(self.name, self.documentation)]

    def collect(self) -> list[Metric]:
        with self._lock:
            counts, exemplars, total = list(self._counts), list(self._exemplars), self._sum
        buckets: list[Any] = []
        cumulative = 0
        for bound, count, exemplar in zip(self._bounds, counts, exemplars, strict=True):
            cumulative += count
            le = "+Inf" if bound == math.inf else str(float(bound))
            buckets.append((le, cumulative, exemplar) if exemplar else (le, cumulative))
        family = HistogramMetricFamily(self.name, self.documentation)
        family.add_metric([], buckets, sum_value=total)
        return [family]


CRITICAL_SECONDS = BatchHistogram(
    "kmo_message_critical_seconds",
    "Time from when an inbound message was sent (its CloudEvents time, else the AMQP timestamp) "
    "to the commit of its effects: what its publisher waits, queueing included (#19).",
    (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0),
    REGISTRY,
)
EVENTS_PUBLISHED = Counter(
    "kmo_events_published_total",
    "Decisions, notices and operational events published to kmo.events, by type.",
    ["type"],
    registry=REGISTRY,
)
EVENTS_RETURNED = Counter(
    "kmo_events_returned_total",
    "Events the broker returned as unroutable (mandatory flag): no queue was bound for them.",
    registry=REGISTRY,
)
OUTBOX_BACKLOG = Gauge(
    "kmo_outbox_backlog_events", "Events committed but not yet published.", registry=REGISTRY
)
OUTBOX_OLDEST_SECONDS = Gauge(
    "kmo_outbox_oldest_event_age_seconds",
    "Age of the oldest unpublished event (0 when the outbox is empty).",
    registry=REGISTRY,
)
TIMERS_FIRED = Counter(
    "kmo_timers_fired_total", "Timers fired, by kind.", ["kind"], registry=REGISTRY
)
TIMERS_DUE = Gauge(
    "kmo_timers_due", "Timers due by the business date and not yet fired.", registry=REGISTRY
)
TIMERS_OVERDUE = Gauge(
    "kmo_timers_overdue",
    "Timers due before the business date and still not fired (the sweep is behind).",
    registry=REGISTRY,
)
UNKNOWN_FIELDS = Counter(
    "kmo_unknown_fields_total",
    "Fields in accepted inbound data that this version's contract does not name (ignored).",
    ["type"],
    registry=REGISTRY,
)
TIMERS_RESCHEDULED = Counter(
    "kmo_timers_rescheduled_total",
    "Pending timers cancelled or added to follow changed settings (R18), by change.",
    ["change"],
    registry=REGISTRY,
)
TIMERS_FOLLOW_SETTINGS = Gauge(
    "kmo_timers_follow_settings",
    "1 once the pending timers follow the settings in force (R18); 0 while a pass is due.",
    registry=REGISTRY,
)
RETRIES = Counter(
    "kmo_retries_total", "Transient failures retried, by cause.", ["cause"], registry=REGISTRY
)
BROKER_CONNECTED = Gauge(
    "kmo_broker_connected", "1 while the consuming connection is up.", registry=REGISTRY
)
BROKER_BLOCKED = Gauge(
    "kmo_broker_blocked",
    "1 while the broker blocks this worker's publishing (connection.blocked: a memory or disk "
    "alarm); events wait in the outbox.",
    registry=REGISTRY,
)
REGISTRATIONS = Gauge("kmo_registrations", "Registrations by state.", ["state"], registry=REGISTRY)
NUMBERS_LEFT = Gauge(
    "kmo_registration_numbers_left",
    "Registration numbers a service has left in the contract's format (R21).",
    ["service"],
    registry=REGISTRY,
)
LAST_PUBLISH = Gauge(
    "kmo_last_publish_timestamp_seconds",
    "Unix time of the last event the broker confirmed.",
    registry=REGISTRY,
)
RETENTION_DELETED = Counter(
    "kmo_retention_deleted_rows_total",
    "Rows retention deleted past their window, by table (R20).",
    ["table"],
    registry=REGISTRY,
)
RETENTION_OLDEST = Gauge(
    "kmo_retention_oldest_kept_seconds",
    "Age of the oldest row retention may delete and still keeps, by table (R20; history: the "
    "longest-closed registration whose life is kept).",
    ["table"],
    registry=REGISTRY,
)
REGISTRATIONS_ERASED = Counter(
    "kmo_registrations_erased_total",
    "Registrations whose personal data was erased (R19), on_request or on_time.",
    ["cause"],
    registry=REGISTRY,
)
