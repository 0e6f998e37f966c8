"""kmo-worker: registers service providers for the Flemish SME wallet (kmo-portefeuille).

Consumes requests, declarations, audit reports and approvals, applies the VLAIO procedure and
publishes decisions and notices. Configuration comes from KMO_* environment variables.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from kombu.messaging import Producer

from worker import __version__, config
from worker.adapters import broker
from worker.bootstrap import App, bootstrap, settle_heap
from worker.consumer.loop import Loop
from worker.contracts import compatibility, schemas
from worker.entrypoints import (
    act,
    dead_letters,
    demo,
    explain,
    find,
    replay,
    report,
    reschedule,
    retention,
)
from worker.service.clock import Clock


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        settings = config.load()
    except config.ConfigurationError as error:
        print(f"kmo-worker: configuration error: {error}", file=sys.stderr)
        return 2
    if args.command == "demo":
        return demo.run(settings)
    if args.command == "schemas":
        return _schemas(args)
    if getattr(args, "today", None):
        settings = settings.model_copy(update={"today": args.today})
    try:
        app = bootstrap(settings, Clock(settings.today))
    except config.ConfigurationError as error:
        print(f"kmo-worker: configuration error: {error}", file=sys.stderr)
        return 2
    handler = {
        "migrate": _migrate,
        "run": _run,
        "publish": _publish,
        "show": _show,
        "find": lambda app, args: find.find(app, args),
        "explain": lambda app, args: explain.explain(app, args),
        "act": _act,
        "reschedule": lambda app, args: reschedule.run(app, args),
        "retention": lambda app, args: retention.run(app, args),
        "replay": lambda app, args: replay.run(app, args),
        "dead-letters": _dead_letters,
    }[args.command]
    return handler(app, args)


EXAMPLES = {
    "migrate": "KMO_DATABASE_URL=postgresql+psycopg://kmo@db/kmo kmo-worker migrate",
    "run": "kmo-worker run --until-idle --today 2027-02-01",
    "publish": "kmo-worker publish requests.ndjson --user desk",
    "show": "kmo-worker show 0403.170.701 --service training",
    "find": "kmo-worker find --state registered_conditionally --follow-up-before end-of-next-month",
    "explain": "kmo-worker explain DV.A000123",
    "act": "kmo-worker act stop DV.A000123 --actor jdoe --reason 'integrity' --reference VLAIO/1",
    "withdraw": "kmo-worker act withdraw DV.O000001 --actor u1 --reason 'stops' --reference EL-7",
    "stop": "kmo-worker act stop DV.A000123 --actor jdoe --reason fraud --reference V/1 --dry-run",
    "extend": "kmo-worker act extend DV.A000123 --deadline follow_up --until 2027-09-30"
    " --actor jdoe --reason 'appeal granted' --reference VLAIO/2",
    "retract": "kmo-worker act retract DV.O000001 --message-id 5f0c-... --reason 'wrong provider'",
    "erase": "kmo-worker act erase DV.O000001 --actor dpo3 --reason 'art. 17' --reference D/42",
    "what-if": "KMO_NOTICE_OFFSETS='{\"expiring\": [60]}' kmo-worker replay --what-if --json",
    "reschedule": "KMO_NOTICE_OFFSETS='{\"expiring\": [60]}' kmo-worker reschedule --dry-run",
    "retention": "KMO_ERASURE_YEARS=5 kmo-worker retention --json",
    "dead-letters": "kmo-worker dead-letters replay --reason processing_failed",
    "list": "kmo-worker dead-letters list --limit 50",
    "replay": "kmo-worker dead-letters replay --id 5f0c-... --user kmo-operator",
    "demo": "kmo-worker demo",
    "schemas": "kmo-worker schemas --check-compatible schemas/released",
}


def _command(
    commands: argparse._SubParsersAction[argparse.ArgumentParser],
    name: str,
    about: str,
    example: str | None = None,
) -> argparse.ArgumentParser:
    shown = EXAMPLES[example or name]
    return commands.add_parser(name, help=about, description=about, epilog=f"example: {shown}")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kmo-worker", description=__doc__, epilog=f"example: {EXAMPLES['run']}"
    )
    parser.add_argument("--version", action="version", version=__version__)
    commands = parser.add_subparsers(dest="command", required=True)
    _command(commands, "migrate", "apply the database migrations")
    run = _command(commands, "run", "consume, decide, publish, fire timers")
    run.add_argument("--today", type=dt.date.fromisoformat, help="fixed business date")
    run.add_argument(
        "--until-idle", action="store_true", help="handle everything waiting, then exit 0"
    )
    publish = _command(commands, "publish", "publish CloudEvents JSON or NDJSON inbound")
    publish.add_argument("file", help="a file, or - for standard input")
    publish.add_argument("--user", help="AMQP user_id to set (default: the broker URL's user)")
    publish.add_argument(
        "--dry-run", action="store_true", help="show what each message would do; publish nothing"
    )
    show = _command(commands, "show", "state, period and history of a provider")
    show.add_argument("enterprise_number")
    show.add_argument("--service", choices=["training", "advice"])
    found = _command(commands, "find", "registrations by state, service, unit, bureau, dates")
    find.add_arguments(found)
    explained = _command(commands, "explain", "why a registration is where it is, what comes next")
    explain.add_arguments(explained)
    for reading in (found, explained):
        reading.add_argument("--today", type=dt.date.fromisoformat, help="the business date")
    acting = _command(
        commands,
        "act",
        "withdraw, stop, extend a deadline, retract a message or erase personal data, as a message",
    )
    acts = acting.add_subparsers(dest="act", required=True)
    for name, about in (
        ("withdraw", "the provider withdraws its request or registration (R14, the desk)"),
        ("stop", "VLAIO stops a registration (R15, the back office)"),
        ("extend", "move a follow-up or reaction deadline later (R16, the back office)"),
        ("retract", "take back a message sent in error and correct the case (R17)"),
        ("erase", "erase a closed registration's personal data now (R19, the back office)"),
    ):
        acting_now = _command(acts, name, about)
        act.add_arguments(acting_now, name)
        acting_now.add_argument("--today", type=dt.date.fromisoformat, help="the business date")
    rescheduling = _command(
        commands, "reschedule", "make live registrations' timers follow the settings (R18)"
    )
    reschedule.add_arguments(rescheduling)
    retention.add_arguments(
        _command(commands, "retention", "erase and delete what has outlived its window now")
    )
    replaying_lives = _command(
        commands,
        "replay",
        "what the code and settings now would decide otherwise (read only)",
        example="what-if",
    )
    replay.add_arguments(replaying_lives)
    replaying_lives.add_argument("--today", type=dt.date.fromisoformat, help="the business date")
    letters = _command(commands, "dead-letters", "list or replay kmo.dead-letter")
    letter_commands = letters.add_subparsers(dest="action", required=True)
    listing = _command(letter_commands, "list", "reason, error, age, type and id of each")
    listing.add_argument("--limit", type=int, default=1000)
    replaying = _command(letter_commands, "replay", "republish to the original routing key")
    replaying.add_argument("--id", help="only the message with this CloudEvents id")
    replaying.add_argument("--reason", help="only the messages dead-lettered for this reason")
    replaying.add_argument("--all", action="store_true", help="every dead letter")
    replaying.add_argument("--user", help="AMQP user_id to set (default: the broker URL's user)")
    _command(commands, "demo", "a small realistic batch through the embedded default")
    schema = _command(commands, "schemas", "write or check schemas/ from the models")
    schema.add_argument("--check", action="store_true", help="exit 1 if schemas/ is stale")
    schema.add_argument(
        "--check-compatible",
        metavar="BASE",
        help="exit 1 if schemas/ breaks the contract in folder BASE (e.g. schemas/released)",
    )
    return parser


def _migrate(app: App, _args: argparse.Namespace) -> int:
    print(f"database at revision {app.store.migrate()}")
    return 0


def _run(app: App, args: argparse.Namespace) -> int:
    if not app.store.is_at_head():
        if not app.store.sets_itself_up:
            print(
                "kmo-worker: the database is not migrated; run `kmo-worker migrate`",
                file=sys.stderr,
            )
            return 2
        app.store.migrate()  # the embedded default sets itself up
    loop = Loop(app)
    loop.install_signal_handlers()
    if not args.until_idle:
        try:
            loop.serve_http()
        except OSError as error:
            port = app.settings.metrics_port
            print(
                f"kmo-worker: KMO_METRICS_PORT={port} cannot be served ({error.strerror}):"
                " another process has it; give each worker on this host its own port, or 0",
                file=sys.stderr,
            )
            return 2
    settle_heap()
    try:
        return loop.run(until_idle=args.until_idle)
    finally:
        app.tracing.shutdown()  # the spans still buffered go to the collector


def _publish(app: App, args: argparse.Namespace) -> int:
    text = sys.stdin.read() if args.file == "-" else Path(args.file).read_text(encoding="utf-8")
    user = _user(app, args.user)
    documents = list(_documents(text))
    problems = sum(1 for _n, _d, problem in documents if problem)
    for number, _document, problem in documents:
        if problem:
            print(f"message {number}: not published: {problem}", file=sys.stderr)
    good = [document for _n, document, problem in documents if not problem]
    if args.dry_run:
        for document in good:
            act.show(app, document, user, as_json=False)
        return 1 if problems else 0
    with _inbound(app) as send:
        for document in good:
            send(document, user)
            print(f"published {document['type']} {document.get('id', '')}")
    return 1 if problems else 0


@contextmanager
def _inbound(app: App) -> Iterator[Callable[[dict[str, Any], str | None], None]]:
    """Publishes CloudEvents to kmo.inbound with confirms, routing key = type."""
    with broker.connect(app.settings, confirms=True) as connection:
        broker.declare(connection, app.topology)
        producer = Producer(connection.default_channel)

        def send(document: dict[str, Any], user: str | None) -> None:
            body = json.dumps(document, ensure_ascii=False).encode("utf-8")
            broker.publish_inbound(producer, body, document["type"], user)

        yield send


def _act(app: App, args: argparse.Namespace) -> int:
    def publish(document: dict[str, Any], user: str | None) -> None:
        with _inbound(app) as send:
            send(document, user)

    return act.act(app, args, _user(app, args.user), publish)


def _user(app: App, given: str | None) -> str | None:
    """The AMQP user_id to stamp: RabbitMQ accepts only the connection's own user."""
    if given is not None or not app.capabilities.checks_user_id:
        return given
    return urlparse(app.settings.broker_url).username or "guest"


def _dead_letters(app: App, args: argparse.Namespace) -> int:
    now = app.clock.now()
    with broker.connect(app.settings) as connection:
        broker.declare(connection, app.topology)
        if args.action == "list":
            letters = dead_letters.browse(connection, args.limit)
            print(dead_letters.table(letters, now) if letters else "No dead letters.")
            return 0
        if not (args.id or args.reason or args.all):
            print("kmo-worker: say which: --id ID, --reason R or --all", file=sys.stderr)
            return 2

        def wanted(letter: dead_letters.DeadLetter) -> bool:
            return (args.id is None or letter.id == args.id) and (
                args.reason is None or letter.reason == args.reason
            )

        with broker.connect(app.settings, confirms=True) as publishing:
            broker.declare(publishing, app.topology)
            replayed = dead_letters.replay(
                connection, publishing, wanted, _user(app, args.user), now
            )
    for letter in replayed:
        print(f"replayed {letter.type} {letter.id} to {letter.exchange} {letter.routing_key}")
    print(f"{len(replayed)} dead letter(s) replayed")
    return 0


def _documents(text: str) -> Iterator[tuple[int, Any, str | None]]:
    """One JSON object, a JSON array of them, or NDJSON; each must name its `type`."""
    try:
        whole = json.loads(text)
        items = whole if isinstance(whole, list) else [whole]
    except json.JSONDecodeError:
        items = []
        for line in text.splitlines():
            if line.strip():
                try:
                    items.append(json.loads(line))
                except json.JSONDecodeError as error:
                    items.append(error)
    for number, item in enumerate(items, start=1):
        if isinstance(item, json.JSONDecodeError):
            yield number, None, f"not JSON ({item})"
        elif not isinstance(item, dict) or not isinstance(item.get("type"), str):
            yield number, None, "not a CloudEvents object with a type"
        else:
            yield number, item, None


def _show(app: App, args: argparse.Namespace) -> int:
    text = report.show(app.store, args.enterprise_number, args.service)
    print(text)
    return 0 if text and not text.startswith("No registration") else 1


def _schemas(args: argparse.Namespace) -> int:
    if args.check_compatible:
        base = Path(args.check_compatible)
        if not any(base.glob("*.json")):
            print(f"kmo-worker schemas: no schema files in {base}", file=sys.stderr)
            return 2
        found = compatibility.problems(
            compatibility.load(base), compatibility.load(schemas.SCHEMA_DIR)
        )
        for problem in found:
            print(f"incompatible: {problem}", file=sys.stderr)
        if not found:
            print(f"schemas/ is compatible with {base}")
        return 1 if found else 0
    if args.check:
        stale = [
            name
            for name, schema in schemas.documents().items()
            if not (schemas.SCHEMA_DIR / name).exists()
            or (schemas.SCHEMA_DIR / name).read_text(encoding="utf-8") != schemas.render(schema)
        ]
        for name in stale:
            print(f"stale: schemas/{name}", file=sys.stderr)
        return 1 if stale else 0
    for path in schemas.write():
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
