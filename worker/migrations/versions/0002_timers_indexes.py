"""timers' indexes for the sweep: the due index in claim order, no redundant registration index

The due index (unfired timers only) becomes (due_on, id), the order the sweep claims in, so that
claiming a batch stops after the batch: with due_on alone, a day with 10,000 due timers was read
and sorted whole for every batch of 500. The timers' own registration_id index goes: the unique
key (registration_id, kind, deadline, offset_days) leads with that column and serves the same
lookups, and every timer written or fired paid for one index more.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27 08:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

UNFIRED = sa.text("fired_at IS NULL")


def upgrade() -> None:
    op.drop_index("ix_timers_registration_id", table_name="timers")
    op.drop_index("ix_timers_due", table_name="timers")
    op.create_index(
        "ix_timers_due",
        "timers",
        ["due_on", "id"],
        postgresql_where=UNFIRED,
        sqlite_where=UNFIRED,
    )


def downgrade() -> None:
    op.drop_index("ix_timers_due", table_name="timers")
    op.create_index(
        "ix_timers_due", "timers", ["due_on"], postgresql_where=UNFIRED, sqlite_where=UNFIRED
    )
    op.create_index("ix_timers_registration_id", "timers", ["registration_id"])
