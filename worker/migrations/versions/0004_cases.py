"""cases: the archive of inbound messages, the columns `find` filters on, acts in the history

The inbox becomes the archive: body, routing key, publisher, business date, registration and
reason of every accepted message. Registrations get the columns `kmo-worker find` filters on,
each with an index in the order it pages in, filled here from the documents already stored.
The history names the actor, reason and reference of an act (R14-R16). Dead letters are
recorded for `kmo-worker explain`.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02 04:00:00
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
PARTIAL = (
    ("bureau", "bureau IS NOT NULL"),
    ("cycle", "cycle > 1"),
    ("period_end", "period_end IS NOT NULL"),
    ("follow_up_deadline", "follow_up_deadline IS NOT NULL"),
    ("reaction_deadline", "reaction_deadline IS NOT NULL"),
)
BATCH = 5_000  # documents read and written back at a time


def upgrade() -> None:
    with op.batch_alter_table("registrations") as table:
        table.add_column(sa.Column("bureau", sa.String(10)))
        table.add_column(sa.Column("cycle", sa.Integer(), nullable=False, server_default="1"))
        table.add_column(sa.Column("period_end", sa.Date()))
        table.add_column(sa.Column("follow_up_deadline", sa.Date()))
        table.add_column(sa.Column("reaction_deadline", sa.Date()))
        table.drop_index("ix_registrations_state")
    _fill_registrations()
    op.create_index(
        "ix_registrations_state_number", "registrations", ["state", "registration_number"]
    )
    for column, where in PARTIAL:
        condition = sa.text(where)
        op.create_index(
            f"ix_registrations_{column}_number",
            "registrations",
            [column, "registration_number"],
            postgresql_where=condition,
            sqlite_where=condition,
        )
    department = sa.text("unit_kind = 'department'")
    op.create_index(
        "ix_registrations_department_number",
        "registrations",
        ["registration_number"],
        postgresql_where=department,
        sqlite_where=department,
    )
    with op.batch_alter_table("inbox") as table:
        table.add_column(sa.Column("registration_id", Id))
        table.add_column(sa.Column("business_date", sa.Date()))
        table.add_column(sa.Column("routing_key", sa.String(200)))
        table.add_column(sa.Column("publisher", sa.String(200)))
        table.add_column(sa.Column("reason", sa.String(60)))
        table.add_column(sa.Column("body", sa.Text()))
    with op.batch_alter_table("history") as table:
        table.add_column(sa.Column("actor", sa.String(500)))
        table.add_column(sa.Column("reason", sa.Text()))
        table.add_column(sa.Column("reference", sa.String(500)))
    op.create_table(
        "dead_letters",
        sa.Column("id", Id, autoincrement=True, nullable=False),
        sa.Column("message_id", sa.String(200)),
        sa.Column("type", sa.String(60)),
        sa.Column("reason", sa.String(40), nullable=False),
        sa.Column("error", sa.Text(), nullable=False),
        sa.Column("enterprise_number", sa.String(10)),
        sa.Column("service", sa.String(10)),
        sa.Column("dead_lettered_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dead_letters")),
    )
    op.create_index("ix_dead_letters_enterprise_number", "dead_letters", ["enterprise_number"])


def _fill_registrations() -> None:
    """The new columns from the documents, in batches by id: the same SQL on both databases."""
    db = op.get_bind()
    table = sa.table(
        "registrations",
        sa.column("id", Id),
        sa.column("document", sa.Text()),
        sa.column("bureau", sa.String()),
        sa.column("cycle", sa.Integer()),
        *(sa.column(name, sa.Date()) for name in COLUMNS[2:]),
    )
    document = sa.cast(table.c.document, sa.Text())
    last = 0
    while True:
        rows = db.execute(
            sa.select(table.c.id, document)
            .select_from(table)
            .where(table.c.id > last)
            .order_by(table.c.id)
            .limit(BATCH)
        ).all()
        if not rows:
            return
        update = (
            sa.update(table)
            .where(table.c.id == sa.bindparam("b_id"))
            .values({name: sa.bindparam(f"b_{name}") for name in COLUMNS})
        )
        db.execute(update, [_columns(row_id, text) for row_id, text in rows])
        last = rows[-1][0]


COLUMNS = ("bureau", "cycle", "period_end", "follow_up_deadline", "reaction_deadline")


def _columns(row_id: int, text: str) -> dict[str, Any]:
    document = json.loads(text)
    period = document.get("period") or {}
    values = {
        "bureau": document.get("bureau"),
        "cycle": document.get("cycle", 1),
        "period_end": period.get("end"),
        "follow_up_deadline": document.get("follow_up_deadline"),
        "reaction_deadline": document.get("reaction_deadline"),
    }
    return {"b_id": row_id, **{f"b_{name}": _date(name, value) for name, value in values.items()}}


def _date(name: str, value: Any) -> Any:
    if name in ("bureau", "cycle") or value is None:
        return value
    return dt.date.fromisoformat(value)


def downgrade() -> None:
    op.drop_index("ix_dead_letters_enterprise_number", table_name="dead_letters")
    op.drop_table("dead_letters")
    with op.batch_alter_table("history") as table:
        for name in ("reference", "reason", "actor"):
            table.drop_column(name)
    with op.batch_alter_table("inbox") as table:
        for name in ("body", "reason", "publisher", "routing_key", "business_date"):
            table.drop_column(name)
        table.drop_column("registration_id")
    op.drop_index("ix_registrations_department_number", table_name="registrations")
    for column, _where in PARTIAL:
        op.drop_index(f"ix_registrations_{column}_number", table_name="registrations")
    op.drop_index("ix_registrations_state_number", table_name="registrations")
    with op.batch_alter_table("registrations") as table:
        for name in reversed(COLUMNS):
            table.drop_column(name)
        table.create_index("ix_registrations_state", ["state"])
