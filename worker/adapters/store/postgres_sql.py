"""Every statement of the PostgreSQL store's hot path, by name.

A batch reads with one statement (`READ`) and writes with one (`write_statement`: one
data-modifying CTE per table, each reading its rows from one JSON parameter with
`json_to_recordset`): one round trip each way, and one parameter per table instead of one per
value. Every CTE of one statement sees the same snapshot, so no two of them touch the same row:
the cancelled timers exclude the ones fired in the batch (a fired timer stays as a record), and
added and cancelled timers are disjoint by construction.

Every lookup is by index, whatever the planner estimates or has cached: it takes a JSON
parameter for 100 rows (a batch has a few), and a plan cached while the tables were small would
scan them whole. Hence the LATERAL lookups by unique key with a LIMIT in `READ`, the id arrays
beside the JSON rows in the UPDATE and DELETE parts, and `= ANY(ARRAY(...))` in `MARK_SENT`
(docs/performance.md has the measurements).
"""

from __future__ import annotations

from worker.adapters.store import port

KEY_COLUMNS = ("enterprise_number", "unit_kind", "department_id", "service")

# The inbox ids seen before, the registrations (locked; keys come sorted, so two batches lock in
# one order and cannot deadlock), numbers drawn per service, and ids for new registrations.
READ = """WITH seen AS (
  SELECT i.message_id FROM json_array_elements_text(CAST(:ids AS json)) AS x(id)
  CROSS JOIN LATERAL (SELECT message_id FROM inbox WHERE message_id = x.id LIMIT 1) AS i),
regs AS (
  SELECT r.id, r.version, CAST(r.document AS text) AS document, r.enterprise_number,
    r.unit_kind, r.department_id, r.service
  FROM json_to_recordset(CAST(:keys AS json))
    AS k(enterprise_number text, unit_kind text, department_id text, service text)
  CROSS JOIN LATERAL (
    SELECT * FROM registrations AS x
    WHERE x.enterprise_number = k.enterprise_number AND x.unit_kind = k.unit_kind
      AND x.department_id = k.department_id AND x.service = k.service
    LIMIT 1 FOR UPDATE) AS r),
numbers AS (
  INSERT INTO number_counters (service, last_value)
  SELECT v.service, v.n FROM json_to_recordset(CAST(:numbers AS json)) AS v(service text, n integer)
  ORDER BY v.service
  ON CONFLICT (service) DO UPDATE SET last_value = number_counters.last_value + excluded.last_value
  RETURNING service, last_value)
SELECT 'seen' AS part, NULL::bigint AS id, NULL::integer AS version, message_id AS document,
  NULL AS enterprise_number, NULL AS unit_kind, NULL AS department_id, NULL AS service FROM seen
UNION ALL
SELECT 'registration', id, version, document, enterprise_number, unit_kind, department_id, service
FROM regs
UNION ALL
SELECT 'number', last_value, NULL, NULL, NULL, NULL, NULL, service FROM numbers
UNION ALL
SELECT 'id', nextval(pg_get_serial_sequence('registrations', 'id')), NULL, NULL, NULL, NULL, NULL,
  NULL FROM generate_series(1, :new_ids)"""

# The first mark stands. Not `WHERE sent_at IS NULL`: that let the planner walk the partial
# index of pending events, which statistics taken before a burst make look small.
MARK_SENT = (
    "UPDATE outbox SET sent_at = coalesce(outbox.sent_at, :now)"
    " WHERE event_id = ANY(ARRAY(SELECT json_array_elements_text(CAST(:sent AS json))))"
)

# The columns `find` filters on and retention selects by (`port.columns`), as every
# registration row carries them.
CASE_COLUMNS = ", ".join(port.CASE_COLUMNS)
_TYPES = {"bureau": "text", "cycle": "integer"}
CASE_TYPES = ", ".join(f"{name} {_TYPES.get(name, 'date')}" for name in port.CASE_COLUMNS)
CASE_SET = ", ".join(f"{name} = v.{name}" for name in port.CASE_COLUMNS)

INSERTED = f"""r AS (
  INSERT INTO registrations (id, enterprise_number, unit_kind, department_id, service,
    registration_number, state, version, document, updated_at, {CASE_COLUMNS})
  SELECT v.id, v.enterprise_number, v.unit_kind, v.department_id, v.service,
    v.registration_number, v.state, 1, v.document, :now, {CASE_COLUMNS}
  FROM json_to_recordset(CAST(:inserted AS json)) AS v(id bigint, enterprise_number text,
    unit_kind text, department_id text, service text, registration_number text, state text,
    document json, {CASE_TYPES})
  RETURNING id)"""

RETURNED = """n AS (
  UPDATE number_counters SET last_value = number_counters.last_value - v.n
  FROM json_to_recordset(CAST(:returned AS json)) AS v(service text, n integer)
  WHERE number_counters.service = v.service
  RETURNING number_counters.service)"""

SENT = f"s AS ({MARK_SENT} RETURNING id)"

CHANGED = f"""u AS (
  UPDATE registrations SET state = v.state, version = v.version + 1, document = v.document,
    updated_at = :now, {CASE_SET}
  FROM json_to_recordset(CAST(:changed AS json))
    AS v(id bigint, version integer, state text, document json, {CASE_TYPES})
  WHERE registrations.id = ANY(CAST(:changed_ids AS bigint[]))
    AND registrations.id = v.id AND registrations.version = v.version
  RETURNING registrations.id)"""

FIRED = """f AS (
  UPDATE timers SET fired_at = :now WHERE id = ANY(CAST(:fired AS bigint[])) RETURNING id)"""

CANCEL = """c AS (
  DELETE FROM timers USING json_to_recordset(CAST(:cancel AS json))
    AS v(registration_id bigint, kind text, deadline date, offset_days integer)
  WHERE timers.registration_id = ANY(CAST(:cancel_ids AS bigint[]))
    AND timers.registration_id = v.registration_id AND timers.kind = v.kind
    AND timers.deadline = v.deadline AND timers.offset_days = v.offset_days
    AND timers.fired_at IS NULL AND timers.id <> ALL(CAST(:fired AS bigint[]))
  RETURNING timers.id)"""

ADD = """a AS (
  INSERT INTO timers (registration_id, kind, deadline, offset_days, due_on, traceparent)
  SELECT * FROM json_to_recordset(CAST(:add AS json))
    AS v(registration_id bigint, kind text, deadline date, offset_days integer, due_on date,
      traceparent text)
  ON CONFLICT (registration_id, kind, deadline, offset_days) DO NOTHING
  RETURNING id)"""

HISTORY = """h AS (
  INSERT INTO history (registration_id, recorded_at, business_date, from_state, to_state, rule,
    note, cause_id, cause_type, events, bureau, publisher, actor, reason, reference)
  SELECT * FROM json_to_recordset(CAST(:history AS json))
    AS v(registration_id bigint, recorded_at timestamptz, business_date date, from_state text,
      to_state text, rule text, note text, cause_id text, cause_type text, events json,
      bureau text, publisher text, actor text, reason text, reference text)
  RETURNING id)"""

OUTBOX = """o AS (
  INSERT INTO outbox (event_id, type, body, created_at)
  SELECT v.event_id, v.type, v.body, :now FROM json_to_recordset(CAST(:outbox AS json))
    AS v(event_id text, type text, body text)
  RETURNING id)"""

INBOX = """i AS (
  INSERT INTO inbox (message_id, type, handled_at, outcome, registration_id, business_date,
    routing_key, publisher, reason, body)
  SELECT * FROM json_to_recordset(CAST(:inbox AS json))
    AS v(message_id text, type text, handled_at timestamptz, outcome text,
      registration_id bigint, business_date date, routing_key text, publisher text,
      reason text, body text)
  RETURNING message_id)"""


def write_statement(parts: list[str], counts_changed: bool) -> str:
    """One statement of the CTEs named; its one value: how many registrations it updated."""
    counted = "(SELECT count(*) FROM u)" if counts_changed else "0"
    return "WITH " + ",\n".join(parts) + f"\nSELECT {counted}"


# The timers a sweep claimed, locked and read anew (`PostgresStore.claim_due`).
LOCK_PENDING = """
SELECT id FROM timers WHERE id = ANY(CAST(:ids AS bigint[])) AND fired_at IS NULL FOR UPDATE"""
