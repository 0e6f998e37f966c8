"""worker state: the fingerprint of the settings the pending timers follow (R18)

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02 10:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    table = op.create_table(
        "worker_state",
        sa.Column("name", sa.String(60), nullable=False),
        sa.Column("applied", sa.String(64)),
        sa.Column("applying", sa.String(64)),
        sa.Column("after_id", Id, nullable=False, server_default="0"),
        sa.Column("updated_at", sa.DateTime(timezone=True)),
        sa.PrimaryKeyConstraint("name", name="pk_worker_state"),
    )
    # Not known: the timers stored so far are checked once against the settings in force.
    op.bulk_insert(table, [{"name": "timer_settings", "applied": None, "after_id": 0}])


def downgrade() -> None:
    op.drop_table("worker_state")
