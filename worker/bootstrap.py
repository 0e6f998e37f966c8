"""The composition root: builds everything from Settings. Tests call it with other settings."""

from __future__ import annotations

import functools
import gc
from dataclasses import dataclass, field

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from worker.adapters import broker
from worker.adapters.store import port
from worker.adapters.store.postgres import PostgresStore
from worker.adapters.store.sqlite import SqliteStore
from worker.config import ConfigurationError, Settings
from worker.contracts.schemas import Validators
from worker.domain.model import Context
from worker.observability import logs, tracing
from worker.service.clock import Clock
from worker.service.envelopes import Envelopes

YOUNG_GENERATION = 20_000  # allocations between collections of the youngest objects (700)
STORES = {"postgresql": PostgresStore.open, "sqlite": SqliteStore.open}


@dataclass(frozen=True)
class App:
    settings: Settings
    clock: Clock
    store: port.Store
    validators: Validators
    envelopes: Envelopes
    topology: broker.Topology
    capabilities: broker.Capabilities
    tracing: tracing.Tracing = field(default_factory=tracing.Tracing)  # off unless configured

    def context(self) -> Context:
        return Context(
            today=self.clock.today(),
            audit_bureaus=self.settings.audit_bureaus,
            offsets=self.settings.notice_offsets,
            back_office=self.back_office,
        )

    @functools.cached_property
    def back_office(self) -> frozenset[str]:
        """The broker accounts of the back office: they may retract any message (R17)."""
        publishers = self.settings.publishers.items()
        return frozenset(account for account, p in publishers if p.role == "back_office")


def open_store(url: str) -> port.Store:
    """The one place that looks at which database the URL names."""
    try:
        backend = make_url(url).get_backend_name()
    except ArgumentError as error:
        raise ConfigurationError(f"KMO_DATABASE_URL: {error}") from error
    if backend not in STORES:
        known = ", ".join(sorted(STORES))
        raise ConfigurationError(f"KMO_DATABASE_URL: {backend!r} is not one of {known}")
    return STORES[backend](url)


def bootstrap(
    settings: Settings,
    clock: Clock | None = None,
    *,
    configure_logs: bool = True,
    traces: tracing.Tracing | None = None,
) -> App:
    """`traces`: another tracer than the settings ask for (tests: `tracing.in_memory()`)."""
    if configure_logs:
        logs.configure(settings.log_format, settings.log_level)
    validators = Validators()
    return App(
        settings=settings,
        clock=clock or Clock(settings.today),
        store=open_store(settings.database_url),
        validators=validators,
        envelopes=Envelopes(settings.source, validators),
        topology=broker.topology(settings),
        capabilities=broker.capabilities(settings),
        tracing=traces or tracing.from_settings(settings),
    )


def settle_heap() -> int:
    """Take everything built so far out of the garbage collector's sight for the life of the
    process (`gc.freeze`), collect the young generation less often, and say how many objects
    were frozen. Called once, when the process is built and about to work: modules, models and
    compiled schemas live as long as the process, and a batch keeps thousands of containers
    alive until it ends (docs/performance.md has what it saves)."""
    gc.collect()  # what start-up left behind is freed, not kept for good
    gc.freeze()
    gc.set_threshold(YOUNG_GENERATION, *gc.get_threshold()[1:])
    return gc.get_freeze_count()
