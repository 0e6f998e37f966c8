"""The contract's compatibility check: a change that would break a publisher or a consumer fails
CI unless the type's major version is bumped (and, inbound, an upcaster exists)."""

from __future__ import annotations

import copy
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from worker.contracts import compatibility, schemas

HEAD = compatibility.load(schemas.SCHEMA_DIR)
Change = Callable[[dict[str, Any]], None]


def changed(name: str, change: Change, *, major: str | None = None) -> dict[str, Any]:
    head = copy.deepcopy(HEAD)
    change(head[name])
    if major is not None:
        head[name]["x-kmo-version"] = major
    return head


def defs(name: str, schema: dict[str, Any]) -> dict[str, Any]:
    return schema["$defs"][name]


BREAKING: list[tuple[str, Change, str]] = [
    (
        "audit.reported",
        lambda s: defs("AuditReported", s)["required"].append("auditor"),
        "/data/auditor is now required",
    ),
    (
        "audit.reported",
        lambda s: defs("AuditReported", s)["properties"]["kind"]["enum"].remove("limited"),
        "no longer accepts ['limited']",
    ),
    (
        "declaration.received",
        lambda s: defs("DeclarationReceived", s)["properties"]["signed_by"].update(maxLength=20),
        "maxLength lowered to 20",
    ),
    (
        "decision.registered",
        lambda s: defs("Registered", s)["properties"].pop("period"),
        "/data/period is gone",
    ),
    (
        "decision.refused",
        lambda s: s["$defs"]["Refused"]["properties"]["reason"]["enum"].append("too_late"),
        "new values ['too_late']",
    ),
    (
        "notice.expiring",
        lambda s: defs("Expiring", s)["properties"]["days_left"].update(type="string"),
        "type changed from 'integer' to 'string'",
    ),
]


def test_the_contract_is_compatible_with_the_last_release() -> None:
    released = compatibility.load(schemas.SCHEMA_DIR / "released")
    assert released, "schemas/released holds the last released contract"
    assert compatibility.problems(released, HEAD) == []


@pytest.mark.parametrize(("name", "change", "said"), BREAKING)
def test_a_breaking_change_fails_unless_the_major_version_is_bumped(
    name: str, change: Change, said: str
) -> None:
    (problem,) = compatibility.problems(HEAD, changed(name, change))
    assert problem.startswith(f"{name}: ") and said in problem
    bumped = changed(name, change, major="2.0")
    inbound = not name.startswith(("decision.", "notice."))
    expected = [f"{name}: major 2 needs an upcaster from 1"] if inbound else []
    assert compatibility.problems(HEAD, bumped) == expected


def test_loosening_an_inbound_field_and_adding_an_optional_one_is_compatible() -> None:
    def loosen(schema: dict[str, Any]) -> None:
        fields = defs("DeclarationReceived", schema)["properties"]
        fields["signed_by"]["maxLength"] = 1000
        fields["signed_in"] = {"type": "string"}

    assert compatibility.problems(HEAD, changed("declaration.received", loosen)) == []


def test_ci_fails_on_a_deliberately_incompatible_schema_in_a_fixture(tmp_path: Path) -> None:
    """What `.ci/run` runs: `kmo-worker schemas --check-compatible schemas/released`, here with
    the released snapshot made stricter than the head for one type (exit 1, the problem named)."""
    base = tmp_path / "released"
    shutil.copytree(schemas.SCHEMA_DIR / "released", base)
    released = (base / "decision.registered.json").read_text()
    stricter = released.replace(
        '"period": {', '"period_label": {"type": "string"},\n"period": {', 1
    )
    (base / "decision.registered.json").write_text(stricter)
    run = [sys.executable, "-m", "worker.entrypoints.cli", "schemas"]
    broken = subprocess.run([*run, "--check-compatible", str(base)], capture_output=True, text=True)
    assert broken.returncode == 1
    assert "decision.registered: /data/period_label is gone" in broken.stderr
    same = subprocess.run(
        [*run, "--check-compatible", str(schemas.SCHEMA_DIR / "released")],
        capture_output=True,
        text=True,
    )
    assert same.returncode == 0, same.stderr
