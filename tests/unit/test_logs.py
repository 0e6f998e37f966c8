from __future__ import annotations

from worker.observability import logs


def test_personal_data_is_masked() -> None:
    line = "iban BE68 5390 0754 7034, BE68539007547034, id 85.01.01-003.13, 75231500124, mail an.peeters@example.be"
    masked = logs.mask(line)
    for secret in (
        "BE68 5390 0754 7034",
        "BE68539007547034",
        "85.01.01-003.13",
        "75231500124",
        "an.peeters@example.be",
    ):
        assert secret not in masked
    assert masked.startswith("iban BE**")


def test_enterprise_and_registration_numbers_stay_readable() -> None:
    assert logs.mask("DV.O000123 for 0403170701") == "DV.O000123 for 0403170701"


def test_a_password_in_a_url_is_masked_wherever_it_is_quoted() -> None:
    quoted = "could not reach postgresql+psycopg://kmo:s3cr3t@127.0.0.1:5432/kmo (timeout)"
    assert (
        logs.mask(quoted)
        == "could not reach postgresql+psycopg://kmo:***@127.0.0.1:5432/kmo (timeout)"
    )
    # A host name that looks like an e-mail's domain goes too: masked on the safe side.
    assert "p%40ss" not in logs.mask("amqps://worker:p%40ss@rabbit.example:5671/kmo")
    assert logs.mask("amqp://rabbit:5672/kmo") == "amqp://rabbit:5672/kmo"  # no password, as is
