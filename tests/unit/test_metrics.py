"""A histogram observed a batch at a time reads exactly as prometheus_client's own."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Histogram, generate_latest

from worker.observability import metrics

BUCKETS = (0.01, 0.1, 1.0)
VALUES = [0.0, 0.01, 0.05, 0.1, 0.5, 1.0, 2.0, 1000.0]


def test_a_batch_histogram_is_exposed_as_the_same_histogram_observed_one_by_one() -> None:
    theirs, ours = CollectorRegistry(), CollectorRegistry()
    one_by_one = Histogram("h_seconds", "h", buckets=BUCKETS, registry=theirs)
    for value in VALUES:
        one_by_one.observe(value)
    batched = metrics.BatchHistogram("h_seconds", "h", BUCKETS, ours)
    batched.observe_all((value, None) for value in VALUES[:3])
    batched.observe_all((value, None) for value in VALUES[3:])
    text = [line for line in generate_latest(ours).decode().splitlines() if "created" not in line]
    expected = [
        line for line in generate_latest(theirs).decode().splitlines() if "created" not in line
    ]
    assert text == expected
    assert batched.sum == sum(VALUES)
