"""The worker built on a SQLite database in memory and the embedded broker in a folder: the
service layer and the engine's sides, tested without a server."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

from tests.support import message
from worker import config, samples
from worker.bootstrap import App, bootstrap
from worker.service import intake
from worker.service.clock import Clock

TODAY = dt.date(2027, 2, 1)
NOW = dt.datetime(2027, 2, 1, 9, 0, tzinfo=dt.UTC)


class At(Clock):
    """A clock that stands still: now is `NOW` on any business date."""

    def now(self) -> dt.datetime:
        return NOW


def app(folder: Path, **settings: Any) -> App:
    built = bootstrap(
        config.Settings(
            database_url="sqlite://",
            broker_folder=folder / "broker",
            today=TODAY,
            audit_bureaus=frozenset({samples.APPOINTED_BUREAU}),
            **settings,
        ),
        At(TODAY),
        configure_logs=False,
    )
    built.store.migrate()
    return built


def accepted(document: dict[str, Any], publisher: str | None = None) -> intake.Accepted:
    parsed = message(document)
    body = json.dumps(document)
    return intake.Accepted(parsed.id, document["type"], parsed.data, publisher, body)


def life(number: str, day: dt.date = TODAY) -> list[intake.Accepted]:
    """A request, its declaration and a passed audit: registered."""
    key = samples.key(number)
    return [
        accepted(samples.request(key)),
        accepted(samples.declaration(key, day)),
        accepted(samples.audit(key, day)),
    ]
