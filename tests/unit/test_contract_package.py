"""`worker.contracts` is usable by an upstream team or a mailer without the worker's runtime:
nothing in it imports kombu, SQLAlchemy, prometheus-client, structlog or tenacity, and the
README's mailer example runs against it."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

RUNTIME = (
    "kombu",
    "amqp",
    "sqlalchemy",
    "alembic",
    "psycopg",
    "prometheus_client",
    "structlog",
    "tenacity",
)


def test_the_contracts_import_with_the_workers_runtime_blocked() -> None:
    script = textwrap.dedent(
        f"""
        import importlib.abc, sys
        class Block(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in {RUNTIME!r}:
                    raise ImportError("blocked: " + name)
                return None
        sys.meta_path.insert(0, Block())
        from worker.contracts import (
            asyncapi, compatibility, envelope, inbound, outbound, schemas, versions,
        )
        validators = schemas.Validators()
        print(len(inbound.INBOUND), len(outbound.OUTBOUND), versions.uri("decision.registered"))
        """
    )
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert run.stdout.split() == ["11", "18", "urn:kmo:schema:decision.registered:1.0"]


MAILER = """
import json
from worker.contracts import schemas, versions
validators = schemas.Validators()

def handle(body: bytes) -> str:
    event = json.loads(body)
    found = versions.URI.match(event.get("dataschema", ""))
    if found is None or int(found["major"]) != versions.major(event["type"]):
        return "skipped: a version this mailer does not know"
    violation = validators.check(event["type"], event)
    return f"invalid: {violation}" if violation else "mail " + event["data"]["state"]
"""


def test_the_readmes_mailer_example_validates_and_skips_an_unknown_version() -> None:
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    assert MAILER.strip() in readme, "the README's example is this one"
    namespace: dict[str, object] = {}
    exec(MAILER, namespace)
    handle = namespace["handle"]
    import datetime as dt

    from tests.support import Life
    from worker import samples as s
    from worker.service import envelopes

    life = Life()
    life.send(s.request(s.key("1543301276")), dt.date(2027, 2, 1))
    ((_, _, body, _),) = envelopes.wrap(
        life.events, "c", "urn:x", dt.datetime(2027, 2, 1, tzinfo=dt.UTC)
    )
    assert handle(body.encode()) == "mail requested"  # type: ignore[operator]
    newer = json.loads(body) | {"dataschema": "urn:kmo:schema:decision.request_accepted:2.0"}
    assert handle(json.dumps(newer).encode()).startswith("skipped")  # type: ignore[operator]
