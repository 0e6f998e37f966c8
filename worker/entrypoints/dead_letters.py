"""`kmo-worker dead-letters list|replay`: what the worker could not handle, and sending it back.

Listing takes the messages without acking them and then closes the channel, so the broker puts
them back in order: looking never removes anything. Replay republishes a dead letter, body
unchanged, to the exchange and routing key it first came to, and acks it only after the broker
confirmed the republished copy.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from kombu.connection import Connection
from kombu.entity import Exchange
from kombu.messaging import Producer

from worker.adapters import broker
from worker.service.intake import REPLAYED_FOR

MAX_LIST = 10_000


@dataclass(frozen=True)
class DeadLetter:
    id: str
    type: str
    reason: str
    error: str
    failed_at: dt.datetime | None
    exchange: str
    routing_key: str
    original_user: str | None
    body: bytes
    headers: dict[str, Any]
    content_type: str | None


def parse(message: Any) -> DeadLetter:
    headers = dict(message.headers or {})
    deaths = headers.get("x-death") or [{}]
    first = deaths[-1] if isinstance(deaths, list) and deaths else {}
    try:
        document = json.loads(message.body)
    except (ValueError, TypeError):
        document = None
    document = document if isinstance(document, dict) else {}
    failed_at = headers.get("x-kmo-failed-at") or first.get("time")
    if isinstance(failed_at, str):
        failed_at = dt.datetime.fromisoformat(failed_at)
    keys = first.get("routing-keys") or [""]
    properties = message.properties or {}
    return DeadLetter(
        id=str(document.get("id", "")) or "-",
        type=str(document.get("type", "")) or "-",
        reason=headers.get("x-kmo-reason") or headers.get("x-first-death-reason") or "unknown",
        error=headers.get("x-kmo-error", ""),
        failed_at=failed_at if isinstance(failed_at, dt.datetime) else None,
        exchange=headers.get("x-kmo-original-exchange") or first.get("exchange", ""),
        routing_key=headers.get("x-kmo-original-routing-key") or keys[0],
        original_user=headers.get(REPLAYED_FOR) or properties.get("user_id"),
        body=message.body if isinstance(message.body, bytes) else str(message.body).encode(),
        headers=headers,
        content_type=properties.get("content_type"),
    )


def _get(channel: Any) -> Any:
    """The next dead letter as a kombu message (py-amqp hands out its own kind), or None."""
    raw = channel.basic_get(broker.DEAD_LETTER_QUEUE, no_ack=False)
    if raw is None or hasattr(raw, "ack"):
        return raw
    return channel.message_to_python(raw)


def browse(connection: Connection, limit: int = MAX_LIST) -> list[DeadLetter]:
    channel = connection.channel()
    try:
        letters: list[DeadLetter] = []
        while len(letters) < limit:
            message = _get(channel)
            if message is None:
                break
            letters.append(parse(message))
        return letters
    finally:
        channel.close()  # unacked: every message goes back to the queue


def replay(
    connection: Connection,
    publishing: Connection,
    wanted: Callable[[DeadLetter], bool],
    user_id: str | None,
    now: dt.datetime,
) -> list[DeadLetter]:
    channel = connection.channel()
    producer = Producer(publishing.default_channel)
    replayed = []
    try:
        while (message := _get(channel)) is not None:
            letter = parse(message)
            if not wanted(letter) or not letter.exchange:
                continue  # left unacked: it goes back when the channel closes
            headers = {k: v for k, v in letter.headers.items() if not k.startswith("x-death")}
            headers = {
                k: v
                for k, v in headers.items()
                if k
                not in ("x-kmo-reason", "x-kmo-error", "x-kmo-failed-at", "x-first-death-reason")
            }
            headers["x-kmo-replayed-at"] = now.isoformat()
            headers["x-kmo-replays"] = int(letter.headers.get("x-kmo-replays", 0)) + 1
            if letter.original_user:
                headers[REPLAYED_FOR] = letter.original_user
            properties: dict[str, Any] = {"user_id": user_id} if user_id else {}
            producer.publish(
                letter.body,
                exchange=Exchange(letter.exchange, type="topic", durable=True),
                routing_key=letter.routing_key,
                headers=headers,
                content_type=letter.content_type or "application/json",
                content_encoding="utf-8",
                delivery_mode=2,
                **properties,
            )
            message.ack()  # the copy is confirmed (publisher confirms) before the original goes
            replayed.append(letter)
        return replayed
    finally:
        channel.close()


def table(letters: list[DeadLetter], now: dt.datetime) -> str:
    rows = [("reason", "age", "type", "id", "error")]
    for letter in letters:
        age = _age(now - letter.failed_at) if letter.failed_at else "?"
        rows.append((letter.reason, age, letter.type, letter.id, letter.error[:80]))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = [
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in rows
    ]
    return "\n".join(lines)


def _age(delta: dt.timedelta) -> str:
    seconds = int(delta.total_seconds())
    for unit, size in (("d", 86_400), ("h", 3_600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"
