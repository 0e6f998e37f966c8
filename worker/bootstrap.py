"""The composition root: builds everything from Settings. Tests call it with other settings."""

from __future__ import annotations

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
