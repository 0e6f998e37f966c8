from __future__ import annotations

import datetime as dt

import pytest

from worker import config
from worker.entrypoints import cli


def test_defaults_need_no_server() -> None:
    settings = config.load()
    assert settings.database_url.startswith("sqlite:///")
    assert settings.is_embedded_broker
    assert settings.downstream_queues == {
        "kmo.mailer": ["decision.#", "notice.#"],
        "kmo.operations": ["message.#"],
    }


def test_structured_values_come_as_json(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KMO_TODAY", "2027-02-01")
    monkeypatch.setenv("KMO_AUDIT_BUREAUS", '["0403.170.701"]')
    monkeypatch.setenv(
        "KMO_PUBLISHERS", '{"bqa": {"role": "audit_bureau", "audit_bureau": "BE0403170701"}}'
    )
    settings = config.load()
    assert settings.today == dt.date(2027, 2, 1)
    assert settings.audit_bureaus == frozenset({"0403170701"})
    assert settings.publishers["bqa"].audit_bureau == "0403170701"


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("KMO_TODAY", "2027-02-30"),
        ("KMO_AUDIT_BUREAUS", '["0403170702"]'),
        ("KMO_PUBLISHERS", '{"x": {"role": "janitor"}}'),
        ("KMO_PUBLISHERS", '{"x": {"role": "audit_bureau"}}'),
        ("KMO_AUTH_REQUIRED", "perhaps"),
        ("KMO_DATABASE_URL", "kmo.sqlite3"),
    ],
)
def test_a_wrong_value_stops_the_worker_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], variable: str, value: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(config.ConfigurationError, match=variable):
        config.load()
    assert cli.main(["migrate"]) == 2
    assert variable in capsys.readouterr().err
