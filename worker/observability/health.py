"""`/metrics`, `/healthz` and `/readyz` on one port (`KMO_METRICS_PORT`), served by a thread.

`/healthz` says the process and its loop are alive: the loop has beaten recently. `/readyz` says
the worker can do its job: the broker is connected and does not block publishing (a memory or
disk alarm), the database answers and its schema is at the migrations' head. Kubernetes
restarts on the first and routes (here: counts as available for disruption budgets) on the
second.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.openmetrics import exposition as openmetrics

from worker.observability import metrics

READY_CACHE_SECONDS = 2.0  # a probe storm costs one database round trip per period


@dataclass
class Health:
    """What the loop reports and the probes read."""

    liveness_seconds: float
    database_ok: Callable[[], bool]
    schema_at_head: Callable[[], bool]
    broker_connected: bool = False
    broker_blocked: str | None = None  # why the broker blocks publishing (an alarm), if it does
    _last_beat: float = field(default_factory=time.monotonic)
    _ready: tuple[float, bool, str] = (0.0, False, "not checked yet")
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def beat(self) -> None:
        self._last_beat = time.monotonic()

    def alive(self) -> tuple[bool, str]:
        age = time.monotonic() - self._last_beat
        if age > self.liveness_seconds:
            return False, f"the worker loop has not run for {age:.0f}s"
        return True, "ok"

    def ready(self) -> tuple[bool, str]:
        with self._lock:
            checked_at, ok, why = self._ready
            if time.monotonic() - checked_at < READY_CACHE_SECONDS:
                return ok, why
            ok, why = self._check()
            self._ready = (time.monotonic(), ok, why)
            return ok, why

    def _check(self) -> tuple[bool, str]:
        if not self.broker_connected:
            return False, "not connected to the broker"
        if self.broker_blocked is not None:
            why = self.broker_blocked
            return False, f"the broker blocks publishing ({why}): events wait in the outbox"
        if not self.database_ok():
            return False, "the database does not answer"
        if not self.schema_at_head():
            return False, "the database is not migrated to head"
        return True, "ok"


def serve(health: Health, port: int, host: str = "0.0.0.0") -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path == "/metrics":
                # OpenMetrics when the scraper asks for it: only it carries exemplars (the trace
                # of a sample of `kmo_message_critical_seconds`).
                if "application/openmetrics-text" in self.headers.get("Accept", ""):
                    body = openmetrics.generate_latest(metrics.REGISTRY)  # type: ignore[no-untyped-call]
                    self._answer(200, body, openmetrics.CONTENT_TYPE_LATEST)
                else:
                    self._answer(200, generate_latest(metrics.REGISTRY), CONTENT_TYPE_LATEST)
            elif self.path == "/healthz":
                self._probe(*health.alive())
            elif self.path == "/readyz":
                self._probe(*health.ready())
            else:
                self._answer(404, b"not found\n", "text/plain")

        def _probe(self, ok: bool, why: str) -> None:
            self._answer(200 if ok else 503, f"{why}\n".encode(), "text/plain; charset=utf-8")

        def _answer(self, status: int, body: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass  # probes every few seconds would drown the event log

    server = ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="kmo-http", daemon=True).start()
    return server
