"""The database schema (SQLAlchemy Core). Alembic migrations in `worker/migrations` create it."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    Date,
    DateTime,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "pk": "pk_%(table_name)s",
    }
)
Id = BigInteger().with_variant(Integer(), "sqlite")  # SQLite autoincrements INTEGER keys only

# Closed, and not erased (pruned) since it closed: the predicates of the two partial indexes,
# which retention's queries repeat word for word so that the planner uses them.
TO_ERASE = "terminal_since IS NOT NULL AND (erased_on IS NULL OR erased_on < terminal_since)"
TO_PRUNE = "terminal_since IS NOT NULL AND (pruned_on IS NULL OR pruned_on < terminal_since)"

registrations = Table(
    "registrations",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("enterprise_number", String(10), nullable=False),
    Column("unit_kind", String(20), nullable=False),
    Column("department_id", String(500), nullable=False),  # "" for the registered office
    Column("service", String(10), nullable=False),
    Column("registration_number", String(10), nullable=False, unique=True),
    Column("state", String(30), nullable=False),
    Column("version", Integer, nullable=False),
    Column("document", JSON, nullable=False),  # the domain Registration, as JSON
    Column("updated_at", DateTime(timezone=True), nullable=False),
    # What `kmo-worker find` filters on, copied from the document on every write (`port.columns`).
    Column("bureau", String(10)),
    Column("cycle", Integer, nullable=False, server_default="1"),
    Column("period_end", Date),
    Column("follow_up_deadline", Date),
    Column("reaction_deadline", Date),
    # Retention (R19, R20): since when it is closed (null while it lives), when its personal data
    # was erased (from the document), and when its history and archive were deleted.
    Column("terminal_since", Date),
    Column("erased_on", Date),
    Column("pruned_on", Date),
    UniqueConstraint("enterprise_number", "unit_kind", "department_id", "service"),
    # Each filter of `find` with its order (registration number, or the date, then the number),
    # so that a page of a filter is an index range, whatever the table's size. Partial where most
    # rows have no value: a write pays only for the indexes its row is in.
    Index("ix_registrations_state_number", "state", "registration_number"),
    *(
        Index(
            f"ix_registrations_{column}_number",
            column,
            "registration_number",
            postgresql_where=text(where),
            sqlite_where=text(where),
        )
        for column, where in (
            ("bureau", "bureau IS NOT NULL"),
            ("cycle", "cycle > 1"),
            ("period_end", "period_end IS NOT NULL"),
            ("follow_up_deadline", "follow_up_deadline IS NOT NULL"),
            ("reaction_deadline", "reaction_deadline IS NOT NULL"),
        )
    ),
    # What retention has still to do, in the order it does it: each index holds the closed
    # registrations not yet erased (or pruned) since they last closed, and nothing else.
    *(
        Index(
            f"ix_registrations_{name}",
            "terminal_since",
            "id",
            postgresql_where=text(where),
            sqlite_where=text(where),
        )
        for name, where in (("to_erase", TO_ERASE), ("to_prune", TO_PRUNE))
    ),
    Index(
        "ix_registrations_department_number",
        "registration_number",
        postgresql_where=text("unit_kind = 'department'"),
        sqlite_where=text("unit_kind = 'department'"),
    ),
)

number_counters = Table(
    "number_counters",
    metadata,
    Column("service", String(10), primary_key=True),
    Column("last_value", Integer, nullable=False),
)

history = Table(
    "history",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("registration_id", Id, nullable=False, index=True),
    Column("recorded_at", DateTime(timezone=True), nullable=False),
    Column("business_date", Date, nullable=False),
    Column("from_state", String(30)),
    Column("to_state", String(30), nullable=False),
    Column("rule", String(20), nullable=False),
    Column("note", Text, nullable=False),
    Column("cause_id", String(300), nullable=False),
    Column("cause_type", String(60), nullable=False),
    Column("events", JSON, nullable=False),  # the types of the events it published
    Column("bureau", String(10)),  # the audit bureau the message named (R13), if any
    Column("publisher", String(200)),  # the broker account that published it, if known
    # An act of a person (R14-R16, and the back office's approval and bureau change).
    Column("actor", String(500)),
    Column("reason", Text),
    Column("reference", String(500)),
)

# The inbox is the archive: every accepted inbound message, its id (the idempotency key) and,
# written in the same transaction as its effects, the body exactly as received, who published
# it, the business date it was decided on and what became of it. Retention clears old bodies
# (`KMO_ARCHIVE_RETENTION_DAYS`) and keeps the rest.
inbox = Table(
    "inbox",
    metadata,
    Column("message_id", String(200), primary_key=True),
    Column("type", String(60), nullable=False),
    Column("handled_at", DateTime(timezone=True), nullable=False),
    Column("outcome", String(60), nullable=False),
    # Null: no registration (unknown, invalid). Not indexed: each message about a registration
    # has a history row naming it (R11: every message has an outcome), and `explain` reads the
    # archive by those ids; an index here would cost every message a write.
    Column("registration_id", Id),
    Column("business_date", Date),
    Column("routing_key", String(200)),
    Column("publisher", String(200)),
    Column("reason", String(60)),  # why it was ignored (R11)
    Column("body", Text),  # null: stored before the archive
    # Retention (R20): the ids of messages about no registration go after KMO_INBOX_RETENTION_DAYS;
    # the rest stay as long as their registration's life.
    Index(
        "ix_inbox_unattached",
        "handled_at",
        postgresql_where=text("registration_id IS NULL"),
        sqlite_where=text("registration_id IS NULL"),
    ),
)

# What was dead-lettered, so that `explain` can show it beside the registration it names; the
# message itself stays on the dead-letter queue. The error is masked like a log line.
dead_letters = Table(
    "dead_letters",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("message_id", String(200)),
    Column("type", String(60)),
    Column("reason", String(40), nullable=False),
    Column("error", Text, nullable=False),
    Column("enterprise_number", String(10), index=True),
    Column("service", String(10)),
    Column("dead_lettered_at", DateTime(timezone=True), nullable=False),
)

outbox = Table(
    "outbox",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("event_id", String(200), nullable=False, unique=True),
    Column("type", String(60), nullable=False),
    Column("body", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("sent_at", DateTime(timezone=True)),
    Index(
        "ix_outbox_pending",
        "id",
        postgresql_where=text("sent_at IS NULL"),
        sqlite_where=text("sent_at IS NULL"),
    ),
)

timers = Table(
    "timers",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    # No index of its own: the unique constraint below leads with it.
    Column("registration_id", Id, nullable=False),
    Column("kind", String(40), nullable=False),
    Column("deadline", Date, nullable=False),
    Column("offset_days", Integer, nullable=False),
    Column("due_on", Date, nullable=False),
    Column("fired_at", DateTime(timezone=True)),
    # The trace of the message that set it (#19): its firing, years on, links to it.
    Column("traceparent", String(55)),
    UniqueConstraint("registration_id", "kind", "deadline", "offset_days"),
    # In the sweep's order (due date, then id), so a claim stops after its batch: with the due
    # date alone, a day with many due timers is read and sorted whole for every batch.
    Index(
        "ix_timers_due",
        "due_on",
        "id",
        postgresql_where=text("fired_at IS NULL"),
        sqlite_where=text("fired_at IS NULL"),
    ),
    # Retention (R20): fired timers go KMO_TIMER_RETENTION_DAYS after their deadline.
    Index(
        "ix_timers_fired",
        "deadline",
        "id",
        postgresql_where=text("fired_at IS NOT NULL"),
        sqlite_where=text("fired_at IS NOT NULL"),
    ),
)

# What the worker has applied to the stored rows as a whole: for `timer_settings`, the fingerprint
# of the settings the pending timers follow (`schedule.fingerprint`), the one being applied and
# how far (the last registration id done); `kmo-worker reschedule` and the loop move it on.
worker_state = Table(
    "worker_state",
    metadata,
    Column("name", String(60), primary_key=True),
    Column("applied", String(64)),  # null: not known (rows stored before this table)
    Column("applying", String(64)),
    Column("after_id", Id, nullable=False, server_default="0"),
    Column("updated_at", DateTime(timezone=True)),
)

# Registrations by state, kept by the database itself (migration 0008): triggers on
# `registrations` add a row of +n / -n per state for every statement that inserts, deletes or
# moves registrations between states, whichever code or person runs it; `count_by_state` folds
# the rows into one a state. The gauges read it every minute: a GROUP BY over ten million
# registrations took seconds of both cores (#20). A later migration that has SQLite rebuild
# `registrations` (batch_alter_table) must create its triggers again, as 0008 does; a test holds
# the counts to a GROUP BY after every migration.
state_counts = Table(
    "state_counts",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("state", String(30), nullable=False),
    Column("delta", BigInteger, nullable=False),
)
