"""The worker's own hot path, for counting instructions (valgrind's callgrind counts the same
whatever else the machine does): intake, then the unit of work on a SQLite file in batches of
100, for 300 messages to warm up and then N more. Two runs with different N, subtracted, give
the instructions per message without start-up:

    valgrind --tool=callgrind --callgrind-out-file=/tmp/cg.300 python -m tests.perf.hot_path 300
    valgrind --tool=callgrind --callgrind-out-file=/tmp/cg.900 python -m tests.perf.hot_path 900
    # (I refs of the second - I refs of the first) / 600

Run in a work tree of each commit to compare them (docs/performance.md, Tracing).
"""

from __future__ import annotations

import datetime as dt
import json
import sys
import tempfile
from typing import Any

from worker import config
from worker import samples as s
from worker.bootstrap import bootstrap
from worker.service import intake, unit_of_work

DAY = dt.date(2027, 2, 1)


def mix(count: int, offset: int) -> list[dict[str, Any]]:
    """Requests, declarations and passed audits, over `count / 3` new registrations."""
    documents = []
    for i in range(count // 3):
        n = 10_000_000 + offset + i
        key = s.key(f"{n:08d}{97 - n % 97:02d}")
        documents += [s.request(key), s.declaration(key, DAY), s.audit(key, DAY)]
    return documents


def main(count: int) -> None:
    folder = tempfile.mkdtemp()
    settings = config.Settings(
        database_url=f"sqlite:///{folder}/hot-path.sqlite3",
        today=DAY,
        audit_bureaus=frozenset({s.APPOINTED_BUREAU}),
        log_level="error",
    )
    app = bootstrap(settings, configure_logs=False)
    app.store.migrate()
    for documents in (mix(300, 0), mix(count, 1_000_000)):
        bodies = [(json.dumps(d).encode(), d["type"]) for d in documents]
        for i in range(0, len(bodies), 100):
            accepted = [
                intake.check(body, {}, app.validators, settings, {}, type_name)
                for body, type_name in bodies[i : i + 100]
            ]
            ready = [a for a in accepted if isinstance(a, intake.Accepted)]
            now = app.clock.now()
            unit_of_work.handle_messages(app.store, app.envelopes, ready, app.context(), now)


if __name__ == "__main__":
    main(int(sys.argv[1]))
