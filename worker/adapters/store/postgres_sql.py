"""Every statement of the PostgreSQL store's hot path, by name.

A batch reads with one statement (`READ`) and writes with one (`WRITE`, the function
`write_batch` of migration 0009: one data-modifying CTE per table, each reading its rows from
one JSON parameter with `json_to_recordset`): one round trip each way, and one parameter per
table instead of one per value.

Every lookup is by index, whatever the planner estimates or has cached: it takes a JSON
parameter for 100 rows (a batch has a few), and a plan cached while the tables were small would
scan them whole. Hence the LATERAL lookups by unique key with a LIMIT in `READ`, `= ANY(ARRAY(...))`
in `MARK_SENT`, and the write's function running with `enable_seqscan = off`
(docs/performance.md has the measurements).
"""

from __future__ import annotations

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

# A batch's write: the function `write_batch` (migration 0009), one data-modifying CTE per
# table in its body, its plan cached by the server and bound to the indexes. A part the batch
# does not have gets an empty array. Its value: how many registrations it updated.
WRITE_PARAMETERS = (
    ("now", "timestamptz"),
    ("inserted", "text"),
    ("returned", "text"),
    ("changed", "text"),
    ("changed_ids", "bigint[]"),
    ("fired", "bigint[]"),
    ("cancel", "text"),
    ("cancel_ids", "bigint[]"),
    ("add", "text"),
    ("history", "text"),
    ("outbox", "text"),
    ("inbox", "text"),
    ("sent", "text"),
)
WRITE = (
    "SELECT write_batch("
    + ", ".join(f"CAST(:{name} AS {kind})" for name, kind in WRITE_PARAMETERS)
    + ")"
)
NOTHING_TO_WRITE: dict[str, object] = {
    name: [] if kind == "bigint[]" else "[]" for name, kind in WRITE_PARAMETERS if name != "now"
}


# The timers a sweep claimed, locked and read anew (`PostgresStore.claim_due`).
LOCK_PENDING = """
SELECT id FROM timers WHERE id = ANY(CAST(:ids AS bigint[])) AND fired_at IS NULL FOR UPDATE"""
