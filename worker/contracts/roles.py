"""Who may publish what (contract.md § Who may publish what): the one list of broker roles."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

Role = Literal["desk", "back_office", "audit_bureau", "operator"]


@dataclass(frozen=True)
class Grant:
    publishes: frozenset[str]  # inbound message types
    who: str  # for people: the AsyncAPI document names the publisher of each type by it


GRANTS: dict[Role, Grant] = {
    "desk": Grant(
        frozenset(
            {
                "registration.requested",
                "declaration.received",
                "registration.withdrawn",
                "message.retracted",
            }
        ),
        "the online desk (e-loket), broker role `desk`",
    ),
    "back_office": Grant(
        frozenset(
            {
                "approval.granted",
                "registration.bureau_changed",
                "registration.stop_ordered",
                "deadline.extended",
                "message.retracted",
                "registration.erasure_requested",
            }
        ),
        "the VLAIO back office, broker role `back_office`",
    ),
    "audit_bureau": Grant(
        frozenset({"audit.reported", "audit.reaction_received", "message.retracted"}),
        "an appointed audit bureau, from its own broker account (role `audit_bureau`)",
    ),
    # Replays dead letters on behalf of the publisher named in the x-kmo-original-user-id header.
    "operator": Grant(frozenset(), "an operator replaying a dead letter, role `operator`"),
}
ROLES: tuple[Role, ...] = get_args(Role)


def publisher_of(type_name: str) -> str:
    """Who publishes an inbound type, for people."""
    return "; or ".join(grant.who for grant in GRANTS.values() if type_name in grant.publishes)
