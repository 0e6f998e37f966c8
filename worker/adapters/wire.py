"""Where the worker reaches below py-amqp's public API: one function per internal it uses.

py-amqp has no public way to ask "has the broker sent anything yet?" nor to write several
messages in one socket write. Each function here names what it relies on; tests/unit/test_wire.py
fails when an installed py-amqp no longer has it, instead of the worker silently slowing down.
"""

from __future__ import annotations

import select
from collections.abc import Callable
from typing import Any

from amqp.method_framing import frame_writer
from kombu.connection import Connection

PackFrames = Callable[..., Any]  # (frame type, channel id, method, arguments, message)


def bytes_waiting(connection: Connection) -> bool:
    """Whether the broker has sent bytes not read yet, without waiting. A transport without a
    socket (the embedded one) answers True: its own drain polls with a timeout.

    Relies on `transport.sock` and on `transport._read_buffer`, where py-amqp keeps the part of
    a frame it has read already. A socket's own timeout cannot tell: CPython rounds it up to a
    whole millisecond."""
    transport = getattr(connection.connection, "transport", None)
    if transport is None or getattr(transport, "sock", None) is None:
        return True
    if transport._read_buffer:
        return True
    readable, _, _ = select.select([transport.sock], [], [], 0)
    return bool(readable)


class Frames:
    """Stands in for the socket while a batch's frames are packed. py-amqp hands over a view of
    its one packing buffer, reused for the next frame: kept as a copy."""

    def __init__(self) -> None:
        self.chunks: list[bytes] = []

    def write(self, data: bytes | memoryview) -> None:
        self.chunks.append(bytes(data))


def frame_packer(connection: Connection, sink: Any) -> PackFrames:
    """py-amqp's own frame writer (`amqp.method_framing.frame_writer`), writing into `sink`
    (anything with `write(bytes)`) instead of the socket, so a batch's frames can be sent in one
    write. `basic_publish` writes every message alone and polls the connection before each."""
    packer: PackFrames = frame_writer(connection.connection, sink)
    return packer


def write(connection: Connection, frames: bytes) -> None:
    """Bytes straight to the broker's socket (`transport.write`, what py-amqp itself uses)."""
    connection.connection.transport.write(frames)
