"""A stand-in mailer for the local stack: prints what it would send, and acks.

It shows what a real mailer must do: read `kmo.mailer`, deduplicate on the CloudEvents id (the
worker delivers at least once), and stay silent when `notify` is false. Where the worker traces,
an event carries `traceparent`: a mailer that traces starts its span as a child of it, so the
mail shows in the request's trace; this one prints the trace id.
"""

from __future__ import annotations

import json
import os
from typing import Any

from kombu import Connection, Queue

URL = os.environ.get("MAILER_BROKER_URL", "amqp://mailer:mailer-secret@rabbitmq:5672/kmo")
seen: set[str] = set()


def on_message(body: Any, message: Any) -> None:
    event = json.loads(body) if isinstance(body, str | bytes) else body
    data = event["data"]
    if event["id"] in seen:
        print(f"duplicate {event['id']}, skipped", flush=True)
    elif not data["notify"]:
        print(f"silent   {event['type']} {data['registration_number']}", flush=True)
    else:
        seen.add(event["id"])
        recipient = data.get("recipient") or {}
        extra = {k: v for k, v in data.items() if k in ("period", "reason", "days_left", "follow_up_deadline", "reaction_deadline")}
        trace = event.get("traceparent", "").split("-")
        print(
            f"mail ({recipient.get('language', '?')}) {event['type']} "
            f"{data['registration_number']} {data['state']} {json.dumps(extra)}"
            + (f" trace {trace[1]}" if len(trace) == 4 else ""),
            flush=True,
        )
    message.ack()


with Connection(URL) as connection:
    queue = Queue("kmo.mailer", durable=True, no_declare=True)
    with connection.Consumer(queue, callbacks=[on_message], accept=["json", "application/cloudevents+json"]):
        print("mailer listening on kmo.mailer", flush=True)
        while True:
            connection.drain_events()
