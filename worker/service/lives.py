"""A registration's life as the core replays it (R17): the stored history rows turned into
steps, each archived message parsed again exactly as it was received."""

from __future__ import annotations

from collections.abc import Sequence

import orjson

from worker.adapters.store import port
from worker.contracts.inbound import INBOUND
from worker.domain import schedule
from worker.domain.outcome import Message
from worker.domain.replay import Step


class ArchiveIncompleteError(Exception):
    """A message of the life is no longer archived with its body: the life cannot be replayed."""


def steps(life: Sequence[port.Lived]) -> list[Step]:
    return [_step(row) for row in life]


def _step(row: port.Lived) -> Step:
    if row.cause_type.startswith(schedule.TIMED):
        return Step(row.business_date, schedule.from_cause_id(row.cause_id), row.events)
    if row.body is None:
        raise ArchiveIncompleteError(row.cause_id)
    data = INBOUND[row.cause_type].model_validate(orjson.loads(row.body)["data"])
    return Step(row.business_date, Message(row.cause_id, data, row.publisher), row.events)
