"""A registration's life as the core replays it (R17): the stored history rows turned into
steps, each archived message parsed again exactly as it was received."""

from __future__ import annotations

from collections.abc import Sequence

import orjson

from worker.adapters.store import port
from worker.contracts import versions
from worker.contracts.inbound import INBOUND, Retraction
from worker.domain import replay, schedule
from worker.domain.model import Context, Registration
from worker.domain.outcome import Message, Outcome, ignored
from worker.domain.replay import Step

ERASED_ON_TIME = "retention.erasure"  # the cause of an erasure KMO_ERASURE_YEARS after closing
ERASURES = frozenset({"registration.erasure_requested", ERASED_ON_TIME})


class ArchiveIncompleteError(Exception):
    """A message of the life is no longer archived with its body: the life cannot be replayed."""


class LifeErasedError(ArchiveIncompleteError):
    """The life's personal data was erased (R19): its messages no longer say what they said."""


def steps(life: Sequence[port.Lived]) -> list[Step]:
    return [_step(row) for row in life]


def _step(row: port.Lived) -> Step:
    if row.cause_type in ERASURES:
        raise LifeErasedError(row.cause_id)
    if row.cause_type.startswith(schedule.TIMED):
        return Step(row.business_date, schedule.from_cause_id(row.cause_id), row.events)
    if row.body is None:
        raise ArchiveIncompleteError(row.cause_id)
    document = orjson.loads(row.body)  # as received: an older major is upcast as on intake
    data = INBOUND[row.cause_type].model_validate(versions.current_data(row.cause_type, document))
    return Step(row.business_date, Message(row.cause_id, data, row.publisher), row.events)


def retract(
    tx: port.Transaction,
    registration_id: int | None,
    registration: Registration | None,
    message: Message,
    ctx: Context,
    since: Sequence[Step] = (),
) -> Outcome:
    """R17 for a stored registration: its life as stored, then `since` (what the caller's
    batch has added to it), replayed without the retracted message."""
    data = message.data
    assert isinstance(data, Retraction)
    if registration is None or (registration_id is None and not since):
        return replay.retract(registration, list(since), message, ctx)
    try:
        stored = steps(tx.life(registration_id)) if registration_id is not None else []
    except LifeErasedError:
        return ignored(registration, registration.key, message, "personal_data_erased")
    except ArchiveIncompleteError:
        return ignored(registration, registration.key, message, "archive_incomplete")
    owner = tx.archived_for(data.retracted_id)
    elsewhere = owner is not None and owner != registration_id
    life = [*stored, *since]
    return replay.retract(registration, life, message, ctx, elsewhere=elsewhere)
