"""The bare limit: consume, publish one event, ack; nothing else. Run as its own process.

python -m tests.perf.bare_relay AMQP_URL COUNT confirms|no-confirms quorum|classic
"""

from __future__ import annotations

import sys

from kombu import Connection, Exchange, Queue

OUT = Exchange("bench.out", type="topic", durable=True)


def main(url: str, count: int, confirms: bool, queue_type: str) -> None:
    queue = Queue("bench.in", durable=True, queue_arguments={"x-queue-type": queue_type})
    options = {"confirm_publish": True} if confirms else {}
    with Connection(url) as consuming, Connection(url, transport_options=options) as publishing:
        producer = publishing.Producer()
        done = 0
        body_out = b"x" * 900  # an event of the worker's size

        def on_message(message: object) -> None:
            nonlocal done
            producer.publish(body_out, exchange=OUT, routing_key="decision.x", delivery_mode=2)
            message.ack()  # type: ignore[attr-defined]
            done += 1

        with consuming.Consumer(queue, on_message=on_message, prefetch_count=100):
            while done < count:
                consuming.drain_events(timeout=60)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), sys.argv[3] == "confirms", sys.argv[4])
