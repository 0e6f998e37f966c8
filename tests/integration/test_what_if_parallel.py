"""`kmo-worker replay --what-if` over many registrations runs in a pool of processes, each a
window of ids, and says the same as one process does."""

from __future__ import annotations

import argparse
import json

import pytest

from tests.conftest import TODAY, Bus
from tests.integration.test_publishers import run
from worker import config
from worker import samples as s
from worker.bootstrap import bootstrap
from worker.entrypoints import replay

pytestmark = pytest.mark.integration


def _what_if(settings: config.Settings, jobs: int, capsys: pytest.CaptureFixture[str]) -> dict:
    app = bootstrap(settings)
    args = argparse.Namespace(registration=None, state=[], json=True, show=50, jobs=jobs)
    assert replay.run(app, args) == 0
    app.store.dispose()
    lines = capsys.readouterr().out.splitlines()
    return json.loads(lines[-1])["totals"]


def test_a_pool_of_processes_judges_every_window_as_one_process_does(
    settings: config.Settings,
    bus: Bus,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    for n in range(10_300_000, 10_300_007):
        key = s.key(f"{n:08d}{97 - n % 97:02d}")
        for document in (s.request(key), s.declaration(key, TODAY), s.audit(key, TODAY)):
            bus.publish(document)
    run(settings)
    serial = _what_if(settings, 1, capsys)
    monkeypatch.setattr(replay, "WINDOW", 2)  # seven registrations, four windows, three processes
    parallel = _what_if(settings, 3, capsys)
    assert serial == parallel
    assert parallel["registrations"] == parallel["same"] == 7
