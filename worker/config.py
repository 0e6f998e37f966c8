"""Settings: the only place that reads environment variables (prefix `KMO_`, contract.md)."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AliasChoices,
    BaseModel,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from worker.contracts.roles import Role
from worker.domain import identifiers
from worker.domain.model import NoticeOffsets

EMBEDDED_BROKER = "filesystem://"
# contract.md's mailer queue, and one for operations: `message.ignored` must not be unroutable.
DEFAULT_DOWNSTREAM = {"kmo.mailer": ["decision.#", "notice.#"], "kmo.operations": ["message.#"]}


class Publisher(BaseModel):
    """`operator` may replay dead letters on behalf of the publisher named in the
    `x-kmo-original-user-id` header; the checks then apply to that publisher."""

    role: Role
    audit_bureau: str | None = None

    @model_validator(mode="after")
    def _bureau_named_for_bureaus(self) -> Publisher:
        if (self.role == "audit_bureau") != (self.audit_bureau is not None):
            raise ValueError("audit_bureau is required exactly for the audit_bureau role")
        if self.audit_bureau is not None:
            self.audit_bureau = _enterprise_number(self.audit_bureau)
        return self


def _enterprise_number(spelling: str) -> str:
    if not identifiers.is_valid_enterprise_number(spelling):
        raise ValueError(f"{spelling!r} is not a valid enterprise number")
    return identifiers.normalise_enterprise_number(spelling)


class SecretFileError(ValueError):
    """A `KMO_<NAME>_FILE` that cannot be read, or given beside `KMO_<NAME>`."""


class FromFiles(PydanticBaseSettingsSource):
    """`KMO_<NAME>_FILE`: the setting read from that file, as Kubernetes and Docker hand secrets
    over (a mounted Secret, compose `secrets:`); one trailing newline is not part of it. Any
    setting may come this way; the secret ones (the URLs, which hold passwords) should."""

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        variable = f"KMO_{field_name.upper()}"
        path = os.environ.get(f"{variable}_FILE")
        if path is None:
            return None, field_name, False
        if variable in os.environ:
            raise SecretFileError(f"{variable} and {variable}_FILE are both set; give one")
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as error:
            raise SecretFileError(f"{variable}_FILE: {error.strerror}: {path}") from error
        return text.removesuffix("\n").removesuffix("\r"), field_name, self.field_is_complex(field)

    def __call__(self) -> dict[str, Any]:
        values: dict[str, Any] = {}
        for name, field in self.settings_cls.model_fields.items():
            value, key, complex_value = self.get_field_value(field, name)
            if value is not None:
                values[key] = self.prepare_field_value(name, field, value, complex_value)
        return values


class Settings(BaseSettings):
    # `null` in a variable is None (`KMO_ERASURE_YEARS=null`: on request only).
    model_config = SettingsConfigDict(
        env_prefix="KMO_",
        extra="ignore",
        frozen=True,
        env_parse_none_str="null",
        populate_by_name=True,  # the OTEL_* fields below by their names too (tests)
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, FromFiles(settings_cls))

    database_url: str = "sqlite:///kmo-worker.sqlite3"
    broker_url: str = EMBEDDED_BROKER
    broker_folder: Path = Path(".kmo-broker")
    # TLS to RabbitMQ, for an amqps:// URL: the CA that signed the server's certificate (default:
    # the system's), a client certificate and key (mutual TLS), and whether that certificate is
    # the login (SASL EXTERNAL, no password). The server's host name is always verified.
    broker_ca_file: Path | None = None
    broker_cert_file: Path | None = None
    broker_key_file: Path | None = None
    broker_tls_external: bool = False
    today: dt.date | None = None
    auth_required: bool | None = None
    publishers: dict[str, Publisher] = Field(default_factory=dict)
    audit_bureaus: frozenset[str] = frozenset()
    downstream_queues: dict[str, list[str]] = Field(default_factory=lambda: DEFAULT_DOWNSTREAM)
    inbound_queue: str = "kmo.worker"
    # Draining a backlog, batches of 500 with 1,000 in flight did 14 % more than 200 with 300
    # (docs/performance.md, 2026-12-03); a steady stream's batches are what has arrived.
    prefetch: Annotated[int, Field(ge=1, le=10_000)] = 1_000
    batch_size: Annotated[int, Field(ge=1, le=5_000)] = 500
    # Parallel sweep transactions on PostgreSQL (SQLite sweeps in one).
    sweep_workers: Annotated[int, Field(ge=1, le=16)] = 2
    queue_type: Literal["quorum", "classic"] = "quorum"
    heartbeat_seconds: Annotated[int, Field(ge=0, le=600)] = 30
    delivery_limit: Annotated[int, Field(ge=1, le=1000)] = 10
    retry_attempts: Annotated[int, Field(ge=1, le=100)] = 8
    retry_max_seconds: Annotated[float, Field(gt=0, le=3600)] = 60.0
    shutdown_grace_seconds: Annotated[float, Field(gt=0, le=3600)] = 25.0
    metrics_port: Annotated[int, Field(ge=0, le=65535)] = 9108  # 0: no HTTP endpoint
    liveness_seconds: Annotated[float, Field(gt=0)] = 120.0
    max_message_bytes: Annotated[int, Field(ge=1024)] = 256 * 1024
    # True: a field in inbound data the contract does not name is a schema_violation (the
    # default accepts and counts it, so publishers may add optional fields first).
    strict_contracts: bool = False
    notice_offsets: NoticeOffsets = NoticeOffsets()
    # Retention (R19, R20): how long each kind of row is kept; None: for good. The inbox window
    # must outlast any redelivery of a message already handled (README, Retention).
    inbox_retention_days: Annotated[int, Field(ge=7)] = 90
    outbox_retention_days: Annotated[int, Field(ge=1)] = 30
    timer_retention_days: Annotated[int, Field(ge=1)] = 30
    dead_letter_retention_days: Annotated[int, Field(ge=1)] = 365
    closed_retention_years: Annotated[int, Field(ge=1)] | None = 10
    erasure_years: Annotated[int, Field(ge=1)] | None = 5
    # Replaced by the retention above (a live registration's archive is kept whole).
    archive_retention_days: int | None = None
    # OpenTelemetry (#19): traces are on when the standard variables ask for them; the SDK reads
    # the rest of its variables itself (endpoint, headers, sampler, service name).
    otel_sdk_disabled: bool = Field(default=False, validation_alias="OTEL_SDK_DISABLED")
    otel_traces_exporter: str = Field(default="", validation_alias="OTEL_TRACES_EXPORTER")
    otel_exporter_otlp_endpoint: str = Field(
        default="",
        validation_alias=AliasChoices(
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT"
        ),
    )
    source: str = "urn:kmo:registration-worker"
    log_format: Literal["json", "console", "auto"] = "auto"
    log_level: Literal["debug", "info", "warning", "error"] = "info"

    @field_validator("audit_bureaus", mode="after")
    @classmethod
    def _bureaus_are_enterprise_numbers(cls, value: frozenset[str]) -> frozenset[str]:
        return frozenset(_enterprise_number(number) for number in value)

    @field_validator("archive_retention_days")
    @classmethod
    def _archive_retention_replaced(cls, value: int | None) -> None:
        if value is not None:
            raise ValueError(
                "no longer read: the archive of a live registration is kept whole (replay, "
                "explain); KMO_CLOSED_RETENTION_YEARS deletes that of closed ones"
            )

    @field_validator("database_url", "broker_url")
    @classmethod
    def _url_has_scheme(cls, value: str) -> str:
        if "://" not in value:
            raise ValueError(f"{value!r} is not a URL")
        return value

    @property
    def is_embedded_broker(self) -> bool:
        return not self.broker_url.startswith(("amqp://", "amqps://", "pyamqp://"))

    @property
    def tracing(self) -> bool:
        """Whether the standard OpenTelemetry variables ask for traces."""
        if self.otel_sdk_disabled:
            return False
        if self.otel_traces_exporter:
            return self.otel_traces_exporter.lower() != "none"
        return bool(self.otel_exporter_otlp_endpoint)

    @property
    def authenticate(self) -> bool:
        """On by default for a real broker; off only when set so explicitly (contract.md)."""
        if self.auth_required is None:
            return not self.is_embedded_broker
        return self.auth_required


class ConfigurationError(Exception):
    """A setting is wrong; the message names the environment variable."""


def load(**overrides: object) -> Settings:
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except SecretFileError as error:
        raise ConfigurationError(str(error)) from error
    except ValidationError as error:
        problems = "; ".join(f"KMO_{str(e['loc'][0]).upper()}: {e['msg']}" for e in error.errors())
        raise ConfigurationError(problems) from error
