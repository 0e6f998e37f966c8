"""Real `kmo-worker run` processes for the fault tests: start, kill -9, terminate, wait."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from worker import config
from worker.bootstrap import open_store


def environment(settings: config.Settings, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KMO_")}
    env |= {
        "KMO_DATABASE_URL": settings.database_url,
        "KMO_BROKER_URL": settings.broker_url,
        "KMO_AUTH_REQUIRED": "true" if settings.authenticate else "false",
        "KMO_AUDIT_BUREAUS": json.dumps(sorted(settings.audit_bureaus)),
        "KMO_PUBLISHERS": json.dumps({k: v.model_dump() for k, v in settings.publishers.items()}),
        "KMO_DOWNSTREAM_QUEUES": json.dumps(settings.downstream_queues),
        "KMO_LOG_FORMAT": "json",
        "KMO_LOG_LEVEL": "warning",
        "KMO_METRICS_PORT": "0",  # several workers on one machine would share the port
    }
    if settings.today:
        env["KMO_TODAY"] = settings.today.isoformat()
    return env | extra


class WorkerProcess:
    def __init__(self, settings: config.Settings, log_dir: Path, *args: str, **env: str) -> None:
        self.log_path = log_dir / f"worker-{time.monotonic_ns()}.log"
        self._log = self.log_path.open("w")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "worker.entrypoints.cli", "run", *args],
            env=environment(settings, **env),
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    def wait_started(self, timeout: float = 60) -> None:
        """Until its loop runs (needs KMO_LOG_LEVEL=info): a SIGTERM before that finds Python
        still importing, with no handler installed yet."""
        wait_until(lambda: '"worker_started"' in self.log(), timeout, "the worker to start")

    def kill(self) -> None:
        """kill -9: no handler runs, nothing is flushed."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=30)
        self._log.close()

    def terminate(self, timeout: float = 60) -> int:
        self.process.send_signal(signal.SIGTERM)
        code = self.process.wait(timeout=timeout)
        self._log.close()
        return code

    def wait(self, timeout: float = 300) -> int:
        code = self.process.wait(timeout=timeout)
        self._log.close()
        return code

    def log(self) -> str:
        return self.log_path.read_text()


def wait_until(
    condition: Callable[[], bool], timeout: float, what: str, every: float = 0.2
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def count_rows(settings: config.Settings, table: Any, *where: Any) -> int:
    """Rows of a table in the worker's database (a fresh connection: workers come and go)."""
    engine = open_store(settings.database_url).engine
    try:
        with engine.connect() as db:
            query = select(func.count()).select_from(table).where(*where)
            return int(db.execute(query).scalar_one())
    finally:
        engine.dispose()
