"""Registration documents as this release stores them (`tests/fixtures/documents/`, written on
2026-12-02 before any change of their shape) are still read, and still written the same way: a
change of the document's shape must come with a version and an upcaster for these (#17)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from worker.adapters.store import documents, rows
from worker.domain import schedule
from worker.domain.model import NoticeOffsets, Registration

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "documents"
DOCUMENTS = sorted(FIXTURES.glob("*.json"))


def test_there_is_a_document_of_each_kind_of_state() -> None:
    assert len(DOCUMENTS) == 6


@pytest.mark.parametrize("path", DOCUMENTS, ids=lambda p: p.stem)
def test_a_document_of_the_previous_release_is_read_and_written_back_the_same(path: Path) -> None:
    text = path.read_text()
    found = rows.stored(_Row(1, 3, text))
    registration = found.registration
    assert registration.state.value == path.stem
    assert json.loads(registration.model_dump_json()) == documents.upcast(json.loads(text))
    assert Registration.model_validate_json(text) == registration
    schedule.timers_for(registration, NoticeOffsets())  # and the core works with it


def test_a_document_is_stored_with_its_version_and_an_older_one_is_upcast_on_read(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    text = (FIXTURES / "registered.json").read_text()
    registration = documents.load(text)  # stored before versions: version 1
    written = documents.dump(registration)
    assert written.startswith('{"document_version":2,')
    assert documents.load(written) == registration
    assert documents.as_dict(registration)["document_version"] == 2
    # Were version 3 to call `starter` what version 2 called `beginner`, a version-1 document
    # would be read through both upcasters.
    old = json.loads(text)
    old["beginner"] = old.pop("starter")
    monkeypatch.setattr(documents, "VERSION", 3)
    monkeypatch.setitem(documents.UPCASTERS, 2, lambda d: {**d, "starter": d.pop("beginner")})
    assert documents.load(json.dumps(old)) == registration
    assert documents.load(documents.dump(registration)) == registration  # version 3, as it is


class _Row:
    def __init__(self, id: int, version: int, document: str) -> None:
        self.id, self.version, self.document = id, version, document
