"""history names the audit bureau and the publisher account of the message that caused a row

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02 00:10:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("history") as table:
        table.add_column(sa.Column("bureau", sa.String(10)))
        table.add_column(sa.Column("publisher", sa.String(200)))


def downgrade() -> None:
    with op.batch_alter_table("history") as table:
        table.drop_column("publisher")
        table.drop_column("bureau")
