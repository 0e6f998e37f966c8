"""Reading an older major through its upcaster (#17), as it will be the day a type changes: here
`declaration.received` 2.0 is made up for the test, its 1.0 calling `signed_by` `signer`."""

from __future__ import annotations

import datetime as dt
import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from worker import config
from worker import samples as s
from worker.adapters.store import port
from worker.contracts import upcasters, versions
from worker.contracts.inbound import DeclarationReceived
from worker.contracts.schemas import SCHEMA_DIR, Validators
from worker.service import intake, lives

TYPE = "declaration.received"
SETTINGS = config.Settings()


@pytest.fixture
def two_majors(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Validators:
    folder = tmp_path / "schemas"
    shutil.copytree(SCHEMA_DIR, folder, ignore=shutil.ignore_patterns("released", "asyncapi"))
    old = json.loads((folder / f"{TYPE}.json").read_text())
    fields = old["$defs"]["DeclarationReceived"]
    fields["properties"]["signer"] = fields["properties"].pop("signed_by")
    fields["required"] = ["signer" if f == "signed_by" else f for f in fields["required"]]
    old["x-kmo-version"] = "1.0"
    (folder / f"{TYPE}@1.json").write_text(json.dumps(old))
    monkeypatch.setitem(versions.CURRENT, TYPE, "2.0")

    def rename(data: dict[str, Any]) -> dict[str, Any]:
        data = dict(data)
        data["signed_by"] = data.pop("signer")
        return data

    monkeypatch.setitem(upcasters.UPCASTERS, (TYPE, 1), rename)
    return Validators(folder)


def declaration(dataschema: str | None, **data: Any) -> dict[str, Any]:
    document = s.declaration(s.key("1543301276"), dt.date(2027, 2, 1))
    document["data"] = {k: v for k, v in document["data"].items() if k != "signed_by"} | data
    if dataschema:
        document["dataschema"] = f"urn:kmo:schema:{TYPE}:{dataschema}"
    return document


def check(validators: Validators, document: dict[str, Any]) -> intake.Accepted | intake.Rejected:
    return intake.check(json.dumps(document).encode(), {}, validators, SETTINGS)


def test_an_older_major_is_checked_against_its_own_schema_and_upcast(
    two_majors: Validators,
) -> None:
    old = declaration("1.3", signer="J. Peeters")
    verdict = check(two_majors, old)
    assert isinstance(verdict, intake.Accepted)
    assert isinstance(verdict.data, DeclarationReceived)
    assert verdict.data.signed_by == "J. Peeters"
    assert '"signer"' in verdict.body  # archived as received
    # Replaying it later reads the archived body through the same upcaster.
    lived = port.Lived(dt.date(2027, 2, 1), old["id"], TYPE, (), verdict.body, None)
    (step,) = lives.steps([lived])
    assert step.cause.data == verdict.data  # type: ignore[union-attr]


def test_the_current_major_is_read_as_ever_and_an_unknown_one_names_what_is_read(
    two_majors: Validators,
) -> None:
    assert isinstance(check(two_majors, declaration(None, signed_by="J.")), intake.Accepted)
    assert isinstance(check(two_majors, declaration("2.0", signed_by="J.")), intake.Accepted)
    wrong_shape = check(two_majors, declaration("1.0", signed_by="J."))  # 1.x has `signer`
    assert isinstance(wrong_shape, intake.Rejected) and wrong_shape.reason == "schema_violation"
    unknown = check(two_majors, declaration("3.0", signed_by="J."))
    assert isinstance(unknown, intake.Rejected)
    assert f"urn:kmo:schema:{TYPE}:2.x, urn:kmo:schema:{TYPE}:1.x" in unknown.error


def test_without_its_upcaster_an_older_major_is_not_read(
    two_majors: Validators, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delitem(upcasters.UPCASTERS, (TYPE, 1))
    verdict = check(two_majors, declaration("1.0", signer="J."))
    assert isinstance(verdict, intake.Rejected)
    assert verdict.error.endswith(f"it accepts urn:kmo:schema:{TYPE}:2.x")
