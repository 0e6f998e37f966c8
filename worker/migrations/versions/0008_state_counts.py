"""state counts: registrations by state, kept by triggers (#20)

The gauge of registrations by state counted the whole table every minute on every replica: on
ten million registrations, seconds of both cores. Now each statement that inserts, deletes or
moves registrations between states adds its +n / -n a state to `state_counts`, in its own
transaction, from a trigger, so no path that writes registrations (the worker, an operator's
SQL, a later migration) can leave the counts behind. PostgreSQL: one trigger a statement,
with its transition tables (a batch adds a few rows, not one a registration). SQLite: one a
row, which costs nothing there. Readers fold the rows (`SqlStore.count_by_state`). The counts
start from one GROUP BY, in the migration's transaction, which holds writers off until the
triggers are in place.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03 14:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

POSTGRESQL = (
    """CREATE OR REPLACE FUNCTION count_states() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      IF TG_OP = 'INSERT' THEN
        INSERT INTO state_counts (state, delta) SELECT state, count(*) FROM new_rows GROUP BY state;
      ELSIF TG_OP = 'DELETE' THEN
        INSERT INTO state_counts (state, delta) SELECT state, -count(*) FROM old_rows GROUP BY state;
      ELSE
        INSERT INTO state_counts (state, delta)
        SELECT state, sum(delta) FROM (
          SELECT state, 1 AS delta FROM new_rows UNION ALL SELECT state, -1 FROM old_rows
        ) AS moved GROUP BY state HAVING sum(delta) <> 0;
      END IF;
      RETURN NULL;
    END $$""",
    """CREATE TRIGGER registrations_inserted AFTER INSERT ON registrations
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION count_states()""",
    """CREATE TRIGGER registrations_updated AFTER UPDATE ON registrations
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION count_states()""",
    """CREATE TRIGGER registrations_deleted AFTER DELETE ON registrations
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION count_states()""",
)
SQLITE = (
    """CREATE TRIGGER registrations_inserted AFTER INSERT ON registrations BEGIN
    INSERT INTO state_counts (state, delta) VALUES (NEW.state, 1); END""",
    """CREATE TRIGGER registrations_updated AFTER UPDATE OF state ON registrations
    WHEN OLD.state IS NOT NEW.state BEGIN
    INSERT INTO state_counts (state, delta) VALUES (OLD.state, -1), (NEW.state, 1); END""",
    """CREATE TRIGGER registrations_deleted AFTER DELETE ON registrations BEGIN
    INSERT INTO state_counts (state, delta) VALUES (OLD.state, -1); END""",
)


def upgrade() -> None:
    op.create_table(
        "state_counts",
        sa.Column("id", Id, nullable=False, autoincrement=True),
        sa.Column("state", sa.String(30), nullable=False),
        sa.Column("delta", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_state_counts"),
    )
    db = op.get_bind()
    if _pg(db):  # no write between the count and the triggers
        op.execute("LOCK TABLE registrations IN SHARE ROW EXCLUSIVE MODE")
    op.execute(
        "INSERT INTO state_counts (state, delta)"
        " SELECT state, count(*) FROM registrations GROUP BY state"
    )
    for statement in POSTGRESQL if _pg(db) else SQLITE:
        op.execute(statement)


def downgrade() -> None:
    db = op.get_bind()
    for name in ("registrations_inserted", "registrations_updated", "registrations_deleted"):
        op.execute(f"DROP TRIGGER {name}" + (" ON registrations" if _pg(db) else ""))
    if _pg(db):
        op.execute("DROP FUNCTION count_states()")
    op.drop_table("state_counts")


def _pg(db: sa.Connection) -> bool:
    return db.dialect.name == "postgresql"
