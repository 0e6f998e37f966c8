from __future__ import annotations

import datetime as dt
from pathlib import Path

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
        ("KMO_INBOX_RETENTION_DAYS", "3"),  # shorter than a redelivery may come (R20)
        ("KMO_ARCHIVE_RETENTION_DAYS", "30"),  # no longer read: said, not silently ignored
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


def test_a_retention_window_is_kept_for_good_with_null(monkeypatch: pytest.MonkeyPatch) -> None:
    assert (config.load().closed_retention_years, config.load().erasure_years) == (10, 5)
    monkeypatch.setenv("KMO_ERASURE_YEARS", "null")
    monkeypatch.setenv("KMO_CLOSED_RETENTION_YEARS", "12")
    settings = config.load()
    assert (settings.closed_retention_years, settings.erasure_years) == (12, None)


def test_a_secret_comes_from_a_file_as_kubernetes_and_docker_hand_it_over(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = tmp_path / "database-url"
    secret.write_text("postgresql+psycopg://kmo:s3cr3t@db:5432/kmo\n")  # as `echo` writes it
    monkeypatch.setenv("KMO_DATABASE_URL_FILE", str(secret))
    offsets = tmp_path / "offsets"
    offsets.write_text('{"expiring": [60]}')
    monkeypatch.setenv("KMO_NOTICE_OFFSETS_FILE", str(offsets))
    settings = config.load()
    assert settings.database_url == "postgresql+psycopg://kmo:s3cr3t@db:5432/kmo"
    assert settings.notice_offsets.expiring == (60,)


def test_a_secret_file_that_is_missing_or_doubled_is_a_configuration_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KMO_BROKER_URL_FILE", str(tmp_path / "nowhere"))
    with pytest.raises(config.ConfigurationError, match="KMO_BROKER_URL_FILE: No such file"):
        config.load()
    (tmp_path / "url").write_text("amqp://guest:guest@localhost//")
    monkeypatch.setenv("KMO_BROKER_URL_FILE", str(tmp_path / "url"))
    monkeypatch.setenv("KMO_BROKER_URL", "amqp://other@localhost//")
    with pytest.raises(config.ConfigurationError, match="both set; give one"):
        config.load()
