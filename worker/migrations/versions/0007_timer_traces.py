"""timer traces: the trace context of the message that set a timer (#19)

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02 17:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("timers") as table:
        table.add_column(sa.Column("traceparent", sa.String(55)))


def downgrade() -> None:
    with op.batch_alter_table("timers") as table:
        table.drop_column("traceparent")
