"""The py-amqp internals `worker.adapters.wire` relies on are still there. Were a release to move
them, batches would silently follow a steady stream again, or events would go out one write
each; these fail instead."""

from __future__ import annotations

import inspect

from amqp import method_framing, transport


def test_the_frame_writer_takes_a_connection_and_anything_with_write() -> None:
    parameters = list(inspect.signature(method_framing.frame_writer).parameters)
    assert parameters[:2] == ["connection", "transport"]


def test_a_transport_keeps_a_read_buffer_a_socket_and_a_write() -> None:
    made = transport.TCPTransport("127.0.0.1:1", connect_timeout=0.1)  # not connected
    assert made._read_buffer == b""
    assert made.sock is None
    assert callable(made.write)
