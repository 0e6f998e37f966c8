"""write_batch: a batch's one write statement as a function, its plan cached and index-bound (#20)

A batch writes with one statement: one data-modifying CTE per table, each reading its rows from
one JSON parameter. Sent as text and planned for every batch, it cost PostgreSQL about 0.4 ms of
CPU a batch before any row was written (on this project's 2-core machine, 2026-12-03: a batch of
one message 1,110 µs of the server's CPU, 700 µs through this function), most of a small batch's
server time. A statement the server prepares is planned once, but a plan made while the tables
were small scans them whole and is kept: the UPDATE and DELETE parts find their rows by the ids
of a parameter whose size a cached plan cannot know (docs/performance.md, "A batch: one statement
each way").

Here the statement is the body of a PL/pgSQL function, which caches its plan, and the function
runs with `enable_seqscan = off`: every plan made in it, generic or not, reaches rows by index
however small the tables look, as the batch read does by its LATERAL lookups. Every part runs on
every call: an absent one gets an empty array and writes nothing. Its value: how many
registrations the UPDATE changed (the store checks it against what it asked for: optimistic
locking).

The body is this migration's, frozen: a change to the batch write is a new migration that
replaces the function (CREATE OR REPLACE), and `PostgresStore.write` calls it by name with
these parameters. SQLite has no functions of this kind; its store writes as before.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03 16:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

ARGUMENTS = """p_now timestamptz, p_inserted text, p_returned text, p_changed text,
  p_changed_ids bigint[], p_fired bigint[], p_cancel text, p_cancel_ids bigint[], p_add text,
  p_history text, p_outbox text, p_inbox text, p_sent text"""

# The CTEs as PostgresStore wrote them before this migration, parameters renamed `p_*`. Every
# CTE of one statement sees the same snapshot, so no two of them touch the same row: cancelled
# timers exclude the ones fired in the batch (a fired timer stays as a record); added and
# cancelled timers are disjoint by construction. The UPDATE and DELETE parts name their rows by
# an id array beside the JSON rows, and the marks look their events up by id, not among the
# pending ones.
WRITE_BATCH = f"""CREATE OR REPLACE FUNCTION write_batch({ARGUMENTS}) RETURNS integer
LANGUAGE plpgsql SET enable_seqscan = off AS $$
DECLARE changed integer;
BEGIN
WITH r AS (
  INSERT INTO registrations (id, enterprise_number, unit_kind, department_id, service,
    registration_number, state, version, document, updated_at, bureau, cycle, period_end,
    follow_up_deadline, reaction_deadline, terminal_since, erased_on)
  SELECT v.id, v.enterprise_number, v.unit_kind, v.department_id, v.service,
    v.registration_number, v.state, 1, v.document, p_now, v.bureau, v.cycle, v.period_end,
    v.follow_up_deadline, v.reaction_deadline, v.terminal_since, v.erased_on
  FROM json_to_recordset(CAST(p_inserted AS json)) AS v(id bigint, enterprise_number text,
    unit_kind text, department_id text, service text, registration_number text, state text,
    document json, bureau text, cycle integer, period_end date, follow_up_deadline date,
    reaction_deadline date, terminal_since date, erased_on date)
  RETURNING id),
n AS (
  UPDATE number_counters SET last_value = number_counters.last_value - v.n
  FROM json_to_recordset(CAST(p_returned AS json)) AS v(service text, n integer)
  WHERE number_counters.service = v.service
  RETURNING number_counters.service),
u AS (
  UPDATE registrations SET state = v.state, version = v.version + 1, document = v.document,
    updated_at = p_now, bureau = v.bureau, cycle = v.cycle, period_end = v.period_end,
    follow_up_deadline = v.follow_up_deadline, reaction_deadline = v.reaction_deadline,
    terminal_since = v.terminal_since, erased_on = v.erased_on
  FROM json_to_recordset(CAST(p_changed AS json))
    AS v(id bigint, version integer, state text, document json, bureau text, cycle integer,
      period_end date, follow_up_deadline date, reaction_deadline date, terminal_since date,
      erased_on date)
  WHERE registrations.id = ANY(p_changed_ids)
    AND registrations.id = v.id AND registrations.version = v.version
  RETURNING registrations.id),
f AS (
  UPDATE timers SET fired_at = p_now WHERE id = ANY(p_fired) RETURNING id),
c AS (
  DELETE FROM timers USING json_to_recordset(CAST(p_cancel AS json))
    AS v(registration_id bigint, kind text, deadline date, offset_days integer)
  WHERE timers.registration_id = ANY(p_cancel_ids)
    AND timers.registration_id = v.registration_id AND timers.kind = v.kind
    AND timers.deadline = v.deadline AND timers.offset_days = v.offset_days
    AND timers.fired_at IS NULL AND timers.id <> ALL(p_fired)
  RETURNING timers.id),
a AS (
  INSERT INTO timers (registration_id, kind, deadline, offset_days, due_on, traceparent)
  SELECT * FROM json_to_recordset(CAST(p_add AS json))
    AS v(registration_id bigint, kind text, deadline date, offset_days integer, due_on date,
      traceparent text)
  ON CONFLICT (registration_id, kind, deadline, offset_days) DO NOTHING
  RETURNING id),
h AS (
  INSERT INTO history (registration_id, recorded_at, business_date, from_state, to_state, rule,
    note, cause_id, cause_type, events, bureau, publisher, actor, reason, reference)
  SELECT * FROM json_to_recordset(CAST(p_history AS json))
    AS v(registration_id bigint, recorded_at timestamptz, business_date date, from_state text,
      to_state text, rule text, note text, cause_id text, cause_type text, events json,
      bureau text, publisher text, actor text, reason text, reference text)
  RETURNING id),
o AS (
  INSERT INTO outbox (event_id, type, body, created_at)
  SELECT v.event_id, v.type, v.body, p_now FROM json_to_recordset(CAST(p_outbox AS json))
    AS v(event_id text, type text, body text)
  RETURNING id),
i AS (
  INSERT INTO inbox (message_id, type, handled_at, outcome, registration_id, business_date,
    routing_key, publisher, reason, body)
  SELECT * FROM json_to_recordset(CAST(p_inbox AS json))
    AS v(message_id text, type text, handled_at timestamptz, outcome text,
      registration_id bigint, business_date date, routing_key text, publisher text,
      reason text, body text)
  RETURNING message_id),
s AS (
  UPDATE outbox SET sent_at = coalesce(outbox.sent_at, p_now)
  WHERE event_id = ANY(ARRAY(SELECT json_array_elements_text(CAST(p_sent AS json))))
  RETURNING id)
SELECT count(*) INTO changed FROM u;
RETURN changed;
END $$"""


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(sa.text(WRITE_BATCH))


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"DROP FUNCTION write_batch({ARGUMENTS})")
