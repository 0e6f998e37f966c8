"""The bare limit: consume, publish one event, ack; nothing else. Run as its own process.

python -m tests.perf.bare_relay AMQP_URL COUNT confirms|no-confirms quorum|classic [echo]

With `echo`, each event carries the CloudEvents id of the message it relays as its causation id,
so that the benchmark can time the broker's own share of the latency, from publish to event.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable

from kombu import Connection, Exchange, Queue

OUT = Exchange("bench.out", type="topic", durable=True)
EVENT_SIZE = 900  # an event of the worker's size
MESSAGE_ID = re.compile(rb'"id":\s*"([^"]+)"')


def main(url: str, count: int, confirms: bool, queue_type: str, echo: bool = False) -> None:
    queue = Queue("bench.in", durable=True, queue_arguments={"x-queue-type": queue_type})
    options = {"confirm_publish": True} if confirms else {}
    with Connection(url) as consuming, Connection(url, transport_options=options) as publishing:
        producer = publishing.Producer()
        done = 0
        plain = b"x" * EVENT_SIZE

        def on_message(message: object) -> None:
            nonlocal done
            body = echoed(message.body) if echo else plain  # type: ignore[attr-defined]
            producer.publish(body, exchange=OUT, routing_key="decision.x", delivery_mode=2)
            message.ack()  # type: ignore[attr-defined]
            done += 1

        with consuming.Consumer(queue, on_message=on_message, prefetch_count=100):
            while done < count:
                consuming.drain_events(timeout=60)


def echoed(relayed: bytes) -> bytes:
    """An event of the worker's size naming the relayed message's id as its causation id."""
    found = MESSAGE_ID.search(relayed)
    body = b'{"causationid": "%s"}' % (found.group(1) if found else b"")
    return body + b" " * (EVENT_SIZE - len(body))


def from_command_line(relay: Callable[..., None]) -> None:
    """AMQP_URL COUNT confirms|no-confirms quorum|classic [echo], for either relay."""
    argv = sys.argv
    relay(argv[1], int(argv[2]), argv[3] == "confirms", argv[4], echo=argv[5:6] == ["echo"])


if __name__ == "__main__":
    from_command_line(main)
