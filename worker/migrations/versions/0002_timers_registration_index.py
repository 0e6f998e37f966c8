"""drop the timers' own registration_id index: the unique key leads with that column

Every timer written or fired paid for one index more than the queries use. The lookups by
registration (cancelling a state's timers) walk the unique index on
(registration_id, kind, deadline, offset_days) instead.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27 08:30:00
"""

from __future__ import annotations

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index("ix_timers_registration_id", table_name="timers")


def downgrade() -> None:
    op.create_index("ix_timers_registration_id", "timers", ["registration_id"], unique=False)
