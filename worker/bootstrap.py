"""The composition root: builds everything from Settings. Tests call it with other settings."""

from __future__ import annotations

import gc
from dataclasses import dataclass

from sqlalchemy import Engine

from worker.adapters import broker, database
from worker.config import Settings
from worker.contracts.schemas import Validators
from worker.domain.model import Context
from worker.observability import logs
from worker.service.clock import Clock
from worker.service.handling import Shell


@dataclass(frozen=True)
class App:
    settings: Settings
    clock: Clock
    engine: Engine
    validators: Validators
    shell: Shell
    topology: broker.Topology

    def context(self) -> Context:
        return Context(
            today=self.clock.today(),
            audit_bureaus=self.settings.audit_bureaus,
            offsets=self.settings.notice_offsets,
        )


def bootstrap(
    settings: Settings, clock: Clock | None = None, *, configure_logs: bool = True
) -> App:
    if configure_logs:
        logs.configure(settings.log_format, settings.log_level)
    engine = database.engine_for(settings.database_url)
    validators = Validators()
    shell = Shell(
        engine=engine,
        source=settings.source,
        validators=validators,
        skip_locked=engine.dialect.name == "postgresql",
    )
    return App(
        settings=settings,
        clock=clock or Clock(settings.today),
        engine=engine,
        validators=validators,
        shell=shell,
        topology=broker.topology(settings),
    )


def settle_heap() -> int:
    """Take everything built so far out of the garbage collector's sight for the life of the
    process (`gc.freeze`), and say how many objects that is. Modules, models, the compiled
    schemas and the pools live as long as the process, yet every full collection walked them
    again: some 100,000 objects, 70 ms a time, a quarter of the Python time of a timer sweep
    (measured: 190 µs a timer before, 150 after). Called once, when the process is built and
    about to work."""
    gc.collect()  # what start-up left behind is freed, not kept for good
    gc.freeze()
    return gc.get_freeze_count()
