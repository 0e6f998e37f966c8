"""`kmo-worker show`: a registration's state, period and timeline, for people."""

from __future__ import annotations

from worker.adapters.store import port
from worker.domain import identifiers
from worker.domain.model import Registration


def show(store: port.Store, enterprise_number: str, service: str | None = None) -> str:
    number = identifiers.normalise_enterprise_number(enterprise_number)
    found = [s for s in store.find(number) if service in (None, s.registration.key.service)]
    if not found:
        return f"No registration for enterprise number {number}."
    return "\n\n".join(_block(s.registration, store.history_of(s.id)) for s in found)


def _who(row: dict[str, object]) -> str:
    """The bureau an audit message named and the account that published it (R13)."""
    parts = []
    if row.get("bureau"):
        parts.append(f"bureau {row['bureau']}")
    if row.get("publisher"):
        parts.append(f"account {row['publisher']}")
    return f" ({', '.join(parts)})" if parts else ""


def _block(registration: Registration, history: list[dict[str, object]]) -> str:
    key = registration.key
    unit = key.unit.kind + (f" {key.unit.department_id}" if key.unit.kind == "department" else "")
    lines = [
        f"{registration.number}  {key.enterprise_number}  {key.service}  {unit}",
        f"  state          {registration.state.value} (since {registration.state_since})",
    ]
    if registration.period:
        lines.append(f"  period         {registration.period.start} to {registration.period.end}")
    if registration.follow_up_deadline:
        lines.append(f"  follow-up by   {registration.follow_up_deadline}")
    if registration.reaction_deadline:
        lines.append(f"  react by       {registration.reaction_deadline}")
    declared = registration.declaration_on or "not yet"
    lines.append(f"  declaration    {declared}")
    if registration.bureau:
        lines.append(f"  audit bureau   {registration.bureau} (of record)")
    if registration.pending_audit:
        lines.append(
            f"  audit waiting  {registration.pending_audit.report_id} (for the declaration)"
        )
    lines.append("  history")
    for row in history:
        before = row["from_state"] or "—"
        events = ", ".join(str(e) for e in row["events"]) or "no event"  # type: ignore[attr-defined]
        note = f"  {row['note']}" if row["note"] else ""
        lines.append(
            f"    {row['business_date']}  {before} → {row['to_state']}  [{row['rule']}]"
            f"  {row['cause_type']} {row['cause_id']}{_who(row)}  → {events}{note}"
        )
    return "\n".join(lines)
