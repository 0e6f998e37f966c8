"""retention: what is kept how long, and personal data erased (R19, R20)

Registrations get the date they closed (null while they live), the date their personal data was
erased and the date their history and archive were deleted, with a partial index for each of
the two passes holding only what is still to do. The inbox gets an index on the messages about
no registration, the timers one on the fired timers, by deadline: the rows retention deletes.
`terminal_since` is filled from the documents of the registrations already closed.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02 16:00:00
"""

from __future__ import annotations

import datetime as dt
import json

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TERMINAL = ("refused", "stopped", "expired", "withdrawn")
TO_ERASE = "terminal_since IS NOT NULL AND (erased_on IS NULL OR erased_on < terminal_since)"
TO_PRUNE = "terminal_since IS NOT NULL AND (pruned_on IS NULL OR pruned_on < terminal_since)"
BATCH = 5_000  # documents read and written back at a time


def upgrade() -> None:
    with op.batch_alter_table("registrations") as table:
        for name in ("terminal_since", "erased_on", "pruned_on"):
            table.add_column(sa.Column(name, sa.Date()))
    _fill_terminal_since()
    for name, where in (("to_erase", TO_ERASE), ("to_prune", TO_PRUNE)):
        condition = sa.text(where)
        op.create_index(
            f"ix_registrations_{name}",
            "registrations",
            ["terminal_since", "id"],
            postgresql_where=condition,
            sqlite_where=condition,
        )
    for name, on, columns, where in (
        ("ix_inbox_unattached", "inbox", ["handled_at"], "registration_id IS NULL"),
        ("ix_timers_fired", "timers", ["deadline", "id"], "fired_at IS NOT NULL"),
    ):
        condition = sa.text(where)
        op.create_index(name, on, columns, postgresql_where=condition, sqlite_where=condition)


def _fill_terminal_since() -> None:
    """The closed registrations' `state_since`, in batches by id: the same SQL on both."""
    db = op.get_bind()
    table = sa.table(
        "registrations",
        sa.column("id", Id),
        sa.column("state", sa.String()),
        sa.column("document", sa.Text()),
        sa.column("terminal_since", sa.Date()),
    )
    document = sa.cast(table.c.document, sa.Text())
    last = 0
    while True:
        rows = db.execute(
            sa.select(table.c.id, document)
            .select_from(table)
            .where(table.c.id > last, table.c.state.in_(TERMINAL))
            .order_by(table.c.id)
            .limit(BATCH)
        ).all()
        if not rows:
            return
        update = (
            sa.update(table)
            .where(table.c.id == sa.bindparam("b_id"))
            .values(terminal_since=sa.bindparam("b_since"))
        )
        db.execute(update, [_since(row_id, text) for row_id, text in rows])
        last = rows[-1][0]


def _since(row_id: int, text: str) -> dict[str, object]:
    since = json.loads(text)["state_since"]
    return {"b_id": row_id, "b_since": dt.date.fromisoformat(since)}


def downgrade() -> None:
    op.drop_index("ix_timers_fired", table_name="timers")
    op.drop_index("ix_inbox_unattached", table_name="inbox")
    for name in ("to_prune", "to_erase"):
        op.drop_index(f"ix_registrations_{name}", table_name="registrations")
    with op.batch_alter_table("registrations") as table:
        for name in ("pruned_on", "erased_on", "terminal_since"):
            table.drop_column(name)
