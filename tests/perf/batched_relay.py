"""The batched bare limit (#20): take what has arrived, up to a batch, publish the batch in one
socket write, wait for its confirms (or not), ack it with one `multiple` ack; nothing else. The
same reading and writing the worker does (its `broker.read_arrived`, its frame packing), without
the worker: no JSON, no database, no rules. Run as its own process.

python -m tests.perf.batched_relay AMQP_URL COUNT confirms|no-confirms quorum|classic [echo]

`echo`: each event carries the CloudEvents id of the message it relays as its causation id, so
that latency can be timed from publish to event, as for the worker.
"""

from __future__ import annotations

import socket
from typing import Any

from amqp import basic_message, spec
from amqp.serialization import dumps
from kombu import Connection

from tests.perf import bare_relay
from worker.adapters import broker, wire
from worker.config import Settings

# The worker's own defaults (KMO_BATCH_SIZE, KMO_PREFETCH): the relay batches as it does.
BATCH: int = Settings.model_fields["batch_size"].default
PREFETCH: int = Settings.model_fields["prefetch"].default


def main(url: str, count: int, confirms: bool, queue_type: str, echo: bool = False) -> None:
    del queue_type  # declared by the benchmark; named for the command line's symmetry
    with Connection(url) as consuming, Connection(url) as publishing:
        arrived: list[Any] = []
        channel = consuming.default_channel
        channel.basic_qos(0, PREFETCH, False)
        channel.basic_consume("bench.in", callback=arrived.append)
        out = publishing.default_channel
        sent, confirmed = [0], [0]  # delivery tags: the last sent, the last confirmed
        if confirms:
            out.confirm_select()

            def acked(delivery_tag: int, multiple: bool) -> None:  # in order (RabbitMQ's)
                confirmed[0] = delivery_tag if multiple else confirmed[0] + 1

            out.events["basic_ack"].add(acked)
        frames = wire.Frames()
        pack = wire.frame_packer(publishing, frames)
        arguments = dumps("Bssbb", (0, "bench.out", "decision.x", False, False))
        plain = b"x" * bare_relay.EVENT_SIZE
        done = 0
        while done < count:
            if not arrived:
                try:
                    consuming.drain_events(timeout=60)
                except (TimeoutError, socket.timeout):  # noqa: UP041
                    raise SystemExit(f"batched relay: {done} of {count}, then nothing") from None
            broker.read_arrived(consuming, enough=lambda: len(arrived) >= BATCH)
            batch, arrived[:BATCH] = arrived[:BATCH], []
            for message in batch:
                body = bare_relay.echoed(message.body) if echo else plain
                event = basic_message.Message(body, delivery_mode=2)
                pack(1, out.channel_id, spec.Basic.Publish, arguments, event)
            wire.write(publishing, b"".join(frames.chunks))
            frames.chunks.clear()
            sent[0] += len(batch)
            while confirms and confirmed[0] < sent[0]:
                publishing.drain_events(timeout=60)
            channel.basic_ack(batch[-1].delivery_tag, multiple=True)
            done += len(batch)


if __name__ == "__main__":
    bare_relay.from_command_line(main)
