"""The worker settles its heap once built: start-up objects frozen, young collections rarer."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from worker.bootstrap import YOUNG_GENERATION, settle_heap


@pytest.fixture
def restored_gc() -> Iterator[None]:
    threshold = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*threshold)


@pytest.mark.usefixtures("restored_gc")
def test_settling_freezes_what_lives_and_collects_the_young_less_often() -> None:
    before = gc.get_threshold()
    built = [[1, 2, 3], {"kept": True}]  # containers built at start-up
    frozen = settle_heap()
    assert frozen > 0  # (the count can drop at once: a frozen object may still be freed)
    collected = {id(o) for generation in range(3) for o in gc.get_objects(generation)}
    assert not collected & {id(o) for o in built}  # out of every collection's sight
    assert gc.get_threshold() == (YOUNG_GENERATION, *before[1:])
