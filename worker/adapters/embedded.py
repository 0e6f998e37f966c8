"""The embedded broker: kombu's filesystem transport, made FIFO and safe across processes.

kombu names each message file by a millisecond clock and a random uuid, so messages published
within one millisecond come out in random order, and it writes the file in place, so a consumer
in another process can take a file that is still being written. Here the name sorts in publish
order (nanoseconds, process id, a per-process counter) and the file appears by an atomic rename.
And kombu's virtual transports remember declared bindings in one state for the whole process, so
a second broker folder used in the same process would never get its binding files: here each
connection has a state of its own (the folder's control files are the bindings that count).
"""

from __future__ import annotations

import itertools
import os
import time
from typing import Any

from kombu.transport import filesystem
from kombu.transport.virtual.base import BrokerState
from kombu.utils.encoding import str_to_bytes
from kombu.utils.json import dumps

_sequence = itertools.count()


class Channel(filesystem.Channel):
    # kombu's own filesystem channel already widens the abstract signature this way.
    def _put(self, queue: Any, payload: Any, **kwargs: Any) -> None:  # type: ignore[override]
        stem = f"{time.time_ns():020d}-{os.getpid():08d}-{next(_sequence):010d}"
        final = os.path.join(self.data_folder_out, f"{stem}.{queue}.msg")
        partial = os.path.join(self.data_folder_out, f"{stem}.partial")
        with open(partial, "wb") as handle:
            handle.write(str_to_bytes(dumps(payload)))
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(partial, final)


class Transport(filesystem.Transport):
    Channel = Channel

    def __init__(self, client: Any, **kwargs: Any) -> None:
        super().__init__(client, **kwargs)
        self.state = BrokerState()
