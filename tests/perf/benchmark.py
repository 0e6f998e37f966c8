"""The benchmark: the bare broker limit and the worker, measured in one run on the local RabbitMQ
and PostgreSQL. Prints a table and writes the figures as JSON.

    python -m tests.perf.benchmark [--messages 20000] [--registrations 1000000] [--due 10000]
                                   [--repeat 3] [--json FILE]
    python -m tests.perf.benchmark --scale --repeat 3      # data at scale (#20), 6 minutes
    python -m tests.perf.benchmark --soak 1000000           # the soak (#20), about 20 minutes
    python -m tests.perf.benchmark --parts ceiling --repeat 1 --json /tmp/ceiling.json
                                     # one part (#20), its figures written where asked

Not part of the test run: it measures, it does not assert.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import amqp
import psycopg
from kombu import Connection, Exchange, Queue
from sqlalchemy import text

from tests.perf import cases, lives
from tests.perf import retention as pruning
from worker import config, samples
from worker.adapters import confirms
from worker.bootstrap import bootstrap, open_store, settle_heap
from worker.consumer import sweep as sweeping
from worker.domain.model import Context
from worker.service.clock import Clock

PG = "postgresql://postgres@127.0.0.1:5432"
AMQP = "amqp://guest:guest@127.0.0.1:5672"
ROOT = Path(__file__).resolve().parents[2]
LATEST = ROOT / "tests/perf/results/latest.json"  # the whole run's figures
TODAY = dt.date(2027, 2, 1)
DEFAULT_PARTS = ("bare", "worker", "sweep", "cases", "replay", "retention", "tracing")


# -- services -----------------------------------------------------------------------------------


def rabbitmqctl(*args: str) -> None:
    subprocess.run(["rabbitmqctl", "-q", *args], check=True, capture_output=True, timeout=60)


def fresh_vhost() -> str:
    name = f"kmo-bench-{uuid.uuid4().hex[:8]}"
    rabbitmqctl("add_vhost", name)
    rabbitmqctl("set_permissions", "-p", name, "guest", ".*", ".*", ".*")
    return name


def fresh_database() -> str:
    name = f"kmo_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(f"{PG}/postgres", autocommit=True) as db:
        db.execute(f'CREATE DATABASE "{name}"')  # type: ignore[arg-type]
    return name


def drop(vhost: str | None = None, db: str | None = None) -> None:
    if vhost:
        rabbitmqctl("delete_vhost", vhost)
    if db:
        with psycopg.connect(f"{PG}/postgres", autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')  # type: ignore[arg-type]


def cpu_seconds(pid: int) -> float:
    """User and system time the process has used so far (/proc/<pid>/stat)."""
    return _cpu_of(Path(f"/proc/{pid}/stat").read_text())


def _cpu_of(stat: str) -> float:
    """User and system time from the text of a /proc/<pid>/stat."""
    fields = stat.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine_cpu_seconds() -> float:
    """CPU time this machine's processes have used so far (/proc/stat: user, nice, system, irq,
    softirq; not idle, iowait or time stolen by the host)."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq = fields[:7]
    return (user + nice + system + irq + softirq) / os.sysconf("SC_CLK_TCK")


BROKER_PROCESSES = ("beam.smp", "erl_child_setup", "inet_gethost", "epmd")


def cpu_by_process(worker_pids: Sequence[int]) -> dict[str, float]:
    """CPU seconds used so far by the worker's processes, PostgreSQL's, RabbitMQ's and this one
    (the load generator and the sink), from /proc: where the machine's time goes."""
    groups = {"worker": 0.0, "postgresql": 0.0, "rabbitmq": 0.0, "load_generator": 0.0}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:  # gone meanwhile
            continue
        pid, name = int(entry.name), stat[stat.index("(") + 1 : stat.rindex(")")]
        if pid in worker_pids:
            group = "worker"
        elif pid == os.getpid():
            group = "load_generator"
        elif name in BROKER_PROCESSES:
            group = "rabbitmq"
        elif name.startswith("postgres"):
            group = "postgresql"
        else:
            continue
        groups[group] += _cpu_of(stat)
    return groups


def _per_message_us(
    before: dict[str, float], after: dict[str, float], messages: int
) -> dict[str, float]:
    return {name: round((after[name] - before[name]) / messages * 1e6, 1) for name in before}


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


# -- the pieces ---------------------------------------------------------------------------------


class Sink:
    """Counts what arrives on a queue, with the arrival time per causation id. Lean on purpose
    (py-amqp's own consumer, no kombu message objects, no JSON parsing): it shares the two cores
    with what it measures."""

    CAUSATION = re.compile(rb'"causationid":\s*"([^"]+)"')

    def __init__(self, url: str, queue: Queue, expected: int) -> None:
        self.url, self.queue, self.expected = url, queue, expected
        self.count = 0
        self.first = self.last = 0.0  # the first and the last arrival
        self.arrivals: dict[str, float] = {}
        self.done = threading.Event()
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        self.ready.wait(30)

    def arrived(self, timeout: float) -> None:
        if not self.done.wait(timeout):
            raise TimeoutError(f"{self.count} of {self.expected} expected messages arrived")

    def _run(self) -> None:
        with Connection(self.url) as connection:
            channel = connection.default_channel
            channel.basic_qos(0, 1000, False)

            def on_message(message: amqp.Message) -> None:
                now = time.perf_counter()
                self.count += 1
                self.first = self.first or now
                self.last = now
                body = message.body
                found = self.CAUSATION.search(body if isinstance(body, bytes) else body.encode())
                if found:
                    self.arrivals[found.group(1).decode()] = now
                if self.count >= self.expected:
                    self.done.set()

            channel.basic_consume(self.queue.name, callback=on_message, no_ack=True)
            self.ready.set()
            while not self.done.is_set():
                with contextlib.suppress(TimeoutError):
                    connection.drain_events(timeout=1)


class Publisher:
    """Publishes in confirm mode without waiting per message (the worker's own
    `ConfirmedBatches`), then `confirmed` waits until the broker has confirmed them all: a
    benchmark that loses a message on the way in would wait for an event that never comes."""

    def __init__(self, connection: Connection) -> None:
        self.batches = confirms.ConfirmedSender(connection, timeout=300)

    def publish(self, body: bytes, exchange: str, routing_key: str) -> None:
        message = amqp.Message(body, delivery_mode=2, content_type="application/cloudevents+json")
        self.batches.send(message, exchange, routing_key)

    def confirmed(self) -> None:
        self.batches.confirmed()


def publish_all(
    url: str, exchange: Exchange, bodies: list[tuple[bytes, str]], rate: float | None = None
) -> dict[str, float]:
    """Publish (body, routing key) pairs, as fast as the broker takes them or at a fixed rate.
    Returns the publish time per CloudEvents id."""
    ids = [json.loads(body)["id"] for body, _key in bodies]  # not on the clock
    stamps: list[float] = []
    with Connection(url) as connection:
        publisher = Publisher(connection)
        start = time.perf_counter()
        for index, (body, key) in enumerate(bodies):
            if rate is not None:
                due = start + index / rate
                while (now := time.perf_counter()) < due:
                    time.sleep(min(due - now, 0.001))
            stamps.append(time.perf_counter())
            publisher.publish(body, exchange.name, key)
        publisher.confirmed()
    return dict(zip(ids, stamps, strict=True))


def worker_mix(count: int, offset: int = 0) -> list[tuple[bytes, str]]:
    """Requests, declarations and passed audits over count/3 distinct registrations."""
    day = TODAY - dt.timedelta(days=5)
    bodies = []
    for i in range(count // 3):
        n = 10_000_000 + offset + i
        key = samples.key(f"{n:08d}{97 - n % 97:02d}")
        for document in (
            samples.request(key),
            samples.declaration(key, day),
            samples.audit(key, day),
        ):
            bodies.append((json.dumps(document).encode(), document["type"]))
    return bodies


# -- measurements -------------------------------------------------------------------------------


def _bare_queues(url: str, queue_type: str) -> Queue:
    """The relay's queue and the sink's, on a fresh vhost; returns the sink's."""
    arguments = {"x-queue-type": queue_type}
    with Connection(url) as connection:
        channel = connection.default_channel
        Queue("bench.in", durable=True, queue_arguments=arguments)(channel).declare()
        out = Exchange("bench.out", type="topic", durable=True)
        out(channel).declare()
        sink_queue = Queue(
            "bench.sink", exchange=out, routing_key="#", durable=True, queue_arguments=arguments
        )
        sink_queue(channel).declare()
    return sink_queue


def _bare_relay(url: str, count: int, with_confirms: bool, queue_type: str, *more: str) -> Any:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.perf.bare_relay",
            url,
            str(count),
            "confirms" if with_confirms else "no",
            queue_type,
            *more,
        ],
        cwd=ROOT,
    )


def bare(count: int, with_confirms: bool, size: int, queue_type: str) -> float:
    vhost = fresh_vhost()
    url = f"{AMQP}/{vhost}"
    try:
        sink = Sink(url, _bare_queues(url, queue_type), count)
        relay = _bare_relay(url, count, with_confirms, queue_type)
        body = b"x" * size
        start = time.perf_counter()
        with Connection(url) as connection:
            publisher = Publisher(connection)
            for _ in range(count):
                publisher.publish(body, "", "bench.in")
            publisher.confirmed()
        sink.arrived(600)
        relay.wait(60)
        return count / (sink.last - start)
    finally:
        drop(vhost=vhost)


def _median_p99(runs: list[dict[str, float]]) -> dict[str, float]:
    """Of several runs' percentiles, the run of median p99."""
    return sorted(runs, key=lambda ms: ms["p99"])[len(runs) // 2]


def _bare_beside(f: dict[str, Any], rate: str) -> str:
    bare = f.get("bare_latency_at_other_rates", {}).get(rate)
    return f"the bare relay's p99 at that rate {bare['p99']} ms" if bare else "for comparison"


def bare_latency(rate: float) -> dict[str, Any]:
    """The broker's own share of the latency: the same mix at the same rate through the bare
    relay (quorum queues, events published without waiting for confirms, as the worker does),
    publish to event. What the worker adds is the difference."""
    vhost = fresh_vhost()
    url = f"{AMQP}/{vhost}"
    try:
        mix = [(body, "bench.in") for body, _key in worker_mix(int(min(rate * 15, 15_000)))]
        sink = Sink(url, _bare_queues(url, "quorum"), len(mix))
        relay = _bare_relay(url, len(mix), False, "quorum", "echo")
        sent = publish_all(url, Exchange("", type="direct"), mix, rate=rate)
        sink.arrived(600)
        relay.wait(60)
        return _percentiles(sent, sink)
    finally:
        drop(vhost=vhost)


def worker_settings(vhost: str, db: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KMO_")}
    return env | {
        "KMO_BROKER_URL": f"{AMQP}/{vhost}",
        "KMO_DATABASE_URL": f"postgresql+psycopg://postgres@127.0.0.1:5432/{db}",
        "KMO_AUTH_REQUIRED": "false",
        "KMO_TODAY": TODAY.isoformat(),
        "KMO_LOG_LEVEL": "warning",
        "KMO_METRICS_PORT": "0",
        "KMO_DOWNSTREAM_QUEUES": json.dumps({"bench.events": ["#"]}),
    }


def start_worker(env: dict[str, str]) -> subprocess.Popen[bytes]:
    return start_workers(env, 1)[0]


def start_workers(
    env: dict[str, str], count: int, migrate: bool = True, consuming: int | None = None
) -> list[subprocess.Popen[bytes]]:
    """`count` worker processes, started together; ready once the queue has `consuming`
    consumers (default `count`: none ran before)."""
    if migrate:
        subprocess.run(
            [sys.executable, "-m", "worker.entrypoints.cli", "migrate"],
            env=env,
            check=True,
            capture_output=True,
        )
    workers = [
        subprocess.Popen([sys.executable, "-m", "worker.entrypoints.cli", "run"], env=env, cwd=ROOT)
        for _ in range(count)
    ]
    wait_for_consumers(
        env["KMO_BROKER_URL"], "kmo.worker", count if consuming is None else consuming
    )
    return workers


def wait_for_consumers(url: str, queue: str, count: int, timeout: float = 60) -> bool:
    """Whether the quorum queue `queue` has `count` consumers within `timeout` seconds; a queue
    not declared yet (a worker still starting) has none."""
    deadline = time.monotonic() + timeout
    with Connection(url) as connection:
        while True:
            try:
                declared = Queue(queue, durable=True, queue_arguments={"x-queue-type": "quorum"})
                _, _, consumers = declared(connection.channel()).queue_declare(passive=True)
                if consumers >= count:
                    return True
            except Exception:
                pass
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.1)


def measure_latency(url: str, rate: float, offset: int) -> dict[str, Any]:
    """Publish the mix at a fixed rate for about 15 s; latency from publish to event."""
    mix = worker_mix(int(min(rate * 15, 15_000)), offset=offset)
    sink = Sink(url, Queue("bench.events", durable=True, no_declare=True), 2 * (len(mix) // 3))
    sent = publish_all(url, Exchange("kmo.inbound", type="topic", durable=True), mix, rate=rate)
    sink.arrived(600)
    return _percentiles(sent, sink)


def _percentiles(sent: dict[str, float], sink: Sink) -> dict[str, Any]:
    latencies = sorted((sink.arrivals[i] - t) * 1000 for i, t in sent.items() if i in sink.arrivals)
    q = statistics.quantiles(latencies, n=100)
    return {
        "samples": len(latencies),
        "ms": {"p50": round(q[49], 2), "p95": round(q[94], 2), "p99": round(q[98], 2)},
    }


def worker_run(
    count: int, more_rates: list[float], extra_env: dict[str, str] | None = None
) -> dict[str, Any]:
    vhost, db = fresh_vhost(), fresh_database()
    env = worker_settings(vhost, db) | (extra_env or {})
    try:
        worker = start_worker(env)
        url = env["KMO_BROKER_URL"]
        rss_before = rss_kib(worker.pid)
        # Latency at the other rates first, in a steady state (not in the wake of the burst).
        also = {
            f"{r:g}": measure_latency(url, r, offset=2_000_000 + 1_000_000 * i)
            for i, r in enumerate(more_rates)
        }
        mix = worker_mix(count)
        expected = 2 * (len(mix) // 3)  # request_accepted and registered per registration
        sink = Sink(url, Queue("bench.events", durable=True, no_declare=True), expected)
        inbound = Exchange("kmo.inbound", type="topic", durable=True)
        machine_before, by_process = machine_cpu_seconds(), cpu_by_process([worker.pid])
        start = time.perf_counter()
        publish_all(url, inbound, mix)
        sink.arrived(1800)
        elapsed = sink.last - start
        throughput = len(mix) / elapsed
        rss_after = rss_kib(worker.pid)
        machine_per_msg_us = (machine_cpu_seconds() - machine_before) / len(mix) * 1e6
        by_process = _per_message_us(by_process, cpu_by_process([worker.pid]), len(mix))

        # Latency at half the measured throughput, of the same mix over new registrations:
        # publish to event, for every message that causes one (requests and audits).
        rate = throughput / 2
        at_half, started = cpu_by_process([worker.pid]), time.perf_counter()
        latency = measure_latency(url, rate, offset=1_000_000)
        seconds = time.perf_counter() - started
        cores = {
            name: round((used - at_half[name]) / seconds, 2)
            for name, used in cpu_by_process([worker.pid]).items()
        }
        rss_end = rss_kib(worker.pid)
        worker.terminate()
        worker.wait(60)
        return {
            "messages": len(mix),
            "events": expected,
            "seconds": round(elapsed, 2),
            "msg_per_s": round(throughput, 1),
            "worker_cpu_us_per_msg": by_process["worker"],
            # Everything busy on the machine per message: broker, database, load generator.
            "machine_cpu_us_per_msg": round(machine_per_msg_us, 1),
            "cpu_us_per_msg_by_process": by_process,
            # The same processes' share of the two cores while the latency is measured.
            "cores_busy_at_half_load": cores,
            "latency_rate_msg_per_s": round(rate, 1),
            "latency_samples": latency["samples"],
            "latency_ms": latency["ms"],
            "latency_at_other_rates": also,
            "rss_kib": {
                "before": rss_before,
                "after_throughput": rss_after,
                "after_latency": rss_end,
            },
        }
    finally:
        drop(vhost=vhost, db=db)


COHORT_DAYS = 7  # the periods of one cohort of due registrations end a week after the last's


def sweep_run(registrations: int, due: int, repeat: int) -> dict[str, Any]:
    """1 M registrations with their timers in PostgreSQL; an empty sweep; then `repeat` sweeps
    with `due` timers due each (cohorts of registrations whose periods end a week apart)."""
    db = fresh_database()
    url = f"postgresql+psycopg://postgres@127.0.0.1:5432/{db}"
    try:
        store = open_store(url)
        store.migrate()
        store.dispose()
        first_end = TODAY - dt.timedelta(days=1)  # the first cohort's periods ended yesterday
        load_registrations(f"{PG}/{db}", registrations, due, repeat, first_end)
        settings = config.Settings(database_url=url, today=TODAY)
        app = bootstrap(settings, Clock(TODAY), configure_logs=False)
        settle_heap()  # as the worker does before it works
        workers = settings.sweep_workers  # as the worker sweeps
        quiet = Context(today=first_end)  # the day before: nothing is due yet
        timings = []
        for _ in range(30):
            start = time.perf_counter()
            fired = sweeping.sweep(app.store, app.envelopes, quiet, app.clock, workers=workers)
            timings.append((time.perf_counter() - start) * 1000)
            assert fired == 0
        rates = []
        for cohort in range(repeat):
            today = TODAY + dt.timedelta(days=COHORT_DAYS * cohort)
            start = time.perf_counter()
            fired = sweeping.sweep(
                app.store, app.envelopes, Context(today=today), app.clock, workers=workers
            )
            seconds = time.perf_counter() - start
            assert fired == due, (fired, due)
            rates.append(round(fired / seconds, 1))
        app.store.engine.dispose()
        return {
            "registrations": registrations,
            "timers": registrations * 3,
            "empty_sweep_ms": {
                "median": round(statistics.median(timings), 3),
                "max": round(max(timings), 3),
            },
            "due": due,
            "sweep_workers": workers,
            "timers_per_s": statistics.median(rates),
            "timers_per_s_runs": rates,
        }
    finally:
        drop(db=db)


def cases_run(registrations: int) -> dict[str, Any]:
    return _on_fresh_database(cases.run, registrations)


def lives_run(registrations: int) -> dict[str, Any]:
    return _on_fresh_database(lives.run, registrations)


def _on_fresh_database(run: Callable[[str, int], dict[str, Any]], count: int) -> dict[str, Any]:
    db = fresh_database()
    try:
        return run(f"postgresql+psycopg://postgres@127.0.0.1:5432/{db}", count)
    finally:
        drop(db=db)


def load_registrations(dsn: str, count: int, due: int, cohorts: int, first_end: dt.date) -> None:
    """COPY rows that a real run would have made: registered, with period-end and notice timers.
    The first `due` × `cohorts` registrations end in cohorts a week apart, their notices sent."""
    future_end = TODAY + dt.timedelta(days=900)
    ending = due * cohorts

    def end_of(i: int) -> dt.date:
        if i <= ending:
            return first_end + dt.timedelta(days=COHORT_DAYS * ((i - 1) // due))
        return future_end + dt.timedelta(days=i % 900)

    now = dt.datetime.now(dt.UTC).isoformat()
    with psycopg.connect(dsn) as db:
        with db.cursor() as cursor:
            with cursor.copy(
                "COPY registrations (id, enterprise_number, unit_kind, department_id, service, registration_number, state, version, document, updated_at) FROM STDIN"
            ) as copy:
                for i in range(1, count + 1):
                    n = 10_000_000 + i
                    number = f"{n:08d}{97 - n % 97:02d}"
                    end = end_of(i)
                    start = dt.date(end.year - 5, end.month, min(end.day, 28)) + dt.timedelta(
                        days=1
                    )
                    document = {
                        "key": {
                            "enterprise_number": number,
                            "unit": {"kind": "registered_office"},
                            "service": "training",
                        },
                        "number": f"DV.O{i:06d}"[:10]
                        if i < 1_000_000
                        else f"DV.A{i - 999_999:06d}",
                        "state": "registered",
                        "state_since": start.isoformat(),
                        "recipient": {"email": "info@example.be", "language": "nl"},
                        "period": {"start": start.isoformat(), "end": end.isoformat()},
                    }
                    copy.write_row(
                        (
                            i,
                            number,
                            "registered_office",
                            "",
                            "training",
                            document["number"],
                            "registered",
                            1,
                            json.dumps(document),
                            now,
                        )
                    )
            with cursor.copy(
                "COPY timers (registration_id, kind, deadline, offset_days, due_on, fired_at) FROM STDIN"
            ) as copy:
                for i in range(1, count + 1):
                    end = end_of(i)
                    fired = now if i <= ending else None  # the notices of the ending ones went out
                    copy.write_row(
                        (i, "deadline.period_end", end, 0, end + dt.timedelta(days=1), None)
                    )
                    copy.write_row(
                        (i, "notice.expiring", end, 90, end - dt.timedelta(days=90), fired)
                    )
                    copy.write_row(
                        (i, "notice.expiring", end, 30, end - dt.timedelta(days=30), fired)
                    )
        db.execute("SELECT setval(pg_get_serial_sequence('registrations', 'id'), %s)", (count,))
        db.commit()
        db.execute("ANALYZE")


# -- the report ---------------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    def version(command: list[str]) -> str:
        try:
            return (
                subprocess.run(command, capture_output=True, text=True, timeout=30)
                .stdout.strip()
                .splitlines()[0]
            )
        except Exception:
            return "?"

    return {
        "cpu": next(
            (
                line.split(":", 1)[1].strip()
                for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")
            ),
            "?",
        ),
        "cores": os.cpu_count(),
        "memory_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
        "python": platform.python_version(),
        "rabbitmq": version(["rabbitmqctl", "-q", "version"]),
        "postgresql": version(
            ["psql", "-h", "127.0.0.1", "-U", "postgres", "-tAc", "show server_version"]
        ),
    }


def retention_run(count: int, rate: float, repeat: int) -> dict[str, Any]:
    """Pruning alone on `count`-sized tables; then the worker's latency at `rate` with a
    retention pass over such tables running beside it, against none, interleaved."""
    db = fresh_database()
    try:
        url = f"postgresql+psycopg://postgres@127.0.0.1:5432/{db}"
        store = open_store(url)
        store.migrate()
        with store.engine.connect() as connection:
            loaded = pruning.load(connection, count)
        store.dispose()
        alone = pruning.prune_rate(url, TODAY) | {"loaded": loaded}
    finally:
        drop(db=db)
    runs: dict[str, list[dict[str, Any]]] = {"without": [], "with": []}
    for run in range(repeat):
        for case in ("without", "with"):
            step(f"latency at {rate:,.0f} msg/s {case} retention, {run + 1}")
            runs[case].append(_latency_beside_retention(rate, count if case == "with" else 0))
    p99 = {case: statistics.median(r["ms"]["p99"] for r in found) for case, found in runs.items()}
    return {
        "prune_alone": alone,
        "latency_rate_msg_per_s": round(rate, 1),
        "latency_runs": runs,
        "p99_ms": p99,
        "p99_ratio": round(p99["with"] / p99["without"], 2),
    }


def _latency_beside_retention(rate: float, count: int) -> dict[str, Any]:
    vhost, db = fresh_vhost(), fresh_database()
    env = worker_settings(vhost, db) | {"KMO_ERASURE_YEARS": "null"}
    try:
        store = open_store(env["KMO_DATABASE_URL"])
        store.migrate()
        if count:
            with store.engine.connect() as connection:
                pruning.load(connection, count)
        worker = start_worker(env)  # its retention pass starts with it
        latency = measure_latency(env["KMO_BROKER_URL"], rate, offset=3_000_000)
        with store.engine.connect() as connection:
            left = connection.execute(psql_count("outbox", "sent_at < now() - interval '30 days'"))
            latency["prunable_left_at_end"] = int(left.scalar_one())
        store.dispose()
        worker.terminate()
        worker.wait(60)
        return latency
    finally:
        drop(vhost=vhost, db=db)


class OtlpSink:
    """Stands in for an OpenTelemetry Collector: takes OTLP/HTTP exports and answers 200, so
    the worker pays for making, encoding and sending its spans, and nothing else."""

    def __init__(self) -> None:
        received = self.received = [0, 0]  # exports, bytes

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                size = int(self.headers.get("Content-Length", 0))
                self.rfile.read(size)
                received[0] += 1
                received[1] += size
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def env(self, ratio: float) -> dict[str, str]:
        return {
            "OTEL_TRACES_EXPORTER": "otlp",
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": (
                f"http://127.0.0.1:{self.server.server_address[1]}/v1/traces"
            ),
            "OTEL_TRACES_SAMPLER": "parentbased_traceidratio",
            "OTEL_TRACES_SAMPLER_ARG": str(ratio),
        }

    def close(self) -> None:
        self.server.shutdown()


def tracing_run(count: int, repeat: int, ratio: float) -> dict[str, Any]:
    """The worker with tracing off and on (sampling `ratio`), interleaved, `repeat` times."""
    sink = OtlpSink()
    runs: dict[str, list[float]] = {"off": [], "on": []}
    cpu: dict[str, list[float]] = {"off": [], "on": []}
    try:
        for run in range(repeat):
            for case in ("off", "on"):
                step(f"worker, tracing {case}, {run + 1}")
                extra = sink.env(ratio) if case == "on" else {}
                measured = worker_run(count, [], extra)
                runs[case].append(measured["msg_per_s"])
                cpu[case].append(measured["worker_cpu_us_per_msg"])
    finally:
        sink.close()
    off, on = (statistics.median(runs[case]) for case in ("off", "on"))
    cpu_off, cpu_on = (statistics.median(cpu[case]) for case in ("off", "on"))
    return {
        "sampling": ratio,
        "runs_msg_per_s": runs,
        "off_msg_per_s": off,
        "on_msg_per_s": on,
        "on_over_off": round(on / off, 3),
        "worker_cpu_us_per_msg": cpu,
        "cpu_on_over_off": round(cpu_on / cpu_off, 3),
        "exports": sink.received[0],
        "exported_bytes": sink.received[1],
    }


def psql_count(table: str, where: str) -> Any:
    return text(f"SELECT count(*) FROM {table} WHERE {where}")


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--registrations", type=int, default=1_000_000)
    parser.add_argument("--due", type=int, default=10_000)
    parser.add_argument(
        "--json",
        type=Path,
        default=None,
        metavar="FILE",
        help=f"where the figures go (default: {LATEST.relative_to(ROOT)}; a run of some"
        " parts only prints them unless this is given; soak and scale write beside it)",
    )
    parser.add_argument(
        "--parts",
        default=None,
        help="a subset, to re-measure one part (default: bare,worker,sweep,cases,replay,"
        "retention,tracing); also ceiling and soak (#20, not in the default run)",
    )
    parser.add_argument(
        "--prunable", type=int, default=400_000, help="rows per table for the retention part"
    )
    parser.add_argument(
        "--retention-rate",
        type=float,
        default=700.0,
        metavar="MSG_PER_S",
        help="offered rate beside a retention pass (the worker part's half rate when it ran)",
    )
    parser.add_argument(
        "--repeat", type=int, default=3, help="runs of each measure; the median is reported"
    )
    parser.add_argument(
        "--latency-also-at",
        type=float,
        nargs="*",
        default=[200.0, 500.0, 800.0, 1200.0],
        metavar="MSG_PER_S",
        help="offered rates to measure latency at, besides half the throughput",
    )
    parser.add_argument(
        "--soak",
        type=int,
        nargs="?",
        const=1_000_000,
        default=0,
        metavar="MESSAGES",
        help="#20: this many messages (1,000,000) through one long-running worker, paced",
    )
    parser.add_argument(
        "--scale",
        type=int,
        nargs="*",
        default=None,
        metavar="REGISTRATIONS",
        help="#20: grow one database through these sizes (200000 600000 1800000), measuring at"
        " each; writes results/scale.json and results/scale.png",
    )
    parser.add_argument(
        "--soak-rate",
        type=float,
        default=0.0,
        metavar="MSG_PER_S",
        help="the soak's offered rate (default: 70 %% of the worker's live throughput, measured)",
    )
    args = parser.parse_args()
    alone = [
        part
        for part, asked in (("soak", args.soak), ("scale", args.scale))
        if asked is not None and asked != 0
    ]
    if args.parts is None:  # --soak or --scale alone runs only that
        args.parts = ",".join(alone) if alone else ",".join(DEFAULT_PARTS)
    elif alone:
        args.parts += "," + ",".join(alone)
    size = len(worker_mix(3)[0][0])
    figures: dict[str, Any] = {
        "machine": machine(),
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "repeat": args.repeat,
    }
    parts = set(args.parts.split(","))
    if "bare" in parts:
        # On the worker's own queue type (quorum), and on classic queues for reference.
        for queue_type, prefix in (("quorum", "bare"), ("classic", "bare_classic")):
            for with_confirms, suffix in ((False, "no_confirms"), (True, "confirms")):
                runs = []
                for run in range(args.repeat):
                    step(f"bare relay, {queue_type} queues, {suffix.replace('_', ' ')}, {run + 1}")
                    runs.append(round(bare(args.messages, with_confirms, size, queue_type), 1))
                figures[f"{prefix}_{suffix}"] = statistics.median(runs)
                figures[f"{prefix}_{suffix}_runs"] = runs
    if "worker" in parts:
        runs = []
        for run in range(args.repeat):
            step(f"worker, {run + 1}")
            runs.append(worker_run(args.messages, args.latency_also_at))
        # The run of median throughput, and every run's figures beside it.
        runs.sort(key=lambda r: r["msg_per_s"])
        figures["worker"] = runs[len(runs) // 2]
        figures["worker_runs"] = [
            {"msg_per_s": r["msg_per_s"], "latency_ms": r["latency_ms"]} for r in runs
        ]
        rate = figures["worker"]["latency_rate_msg_per_s"]
        bare_runs = []
        for run in range(args.repeat):
            step(f"bare relay latency at {rate:,.0f} msg/s, {run + 1}")
            bare_runs.append(bare_latency(rate)["ms"])
        bare_runs.sort(key=lambda ms: ms["p99"])
        figures["bare_latency_ms"] = _median_p99(bare_runs)
        figures["bare_latency_runs"] = bare_runs
        # The broker's own share at the other rates too: a target below it is out of reach.
        figures["bare_latency_at_other_rates"] = {}
        for other in args.latency_also_at:
            others = []
            for run in range(args.repeat):
                step(f"bare relay latency at {other:,.0f} msg/s, {run + 1}")
                others.append(bare_latency(other)["ms"])
            figures["bare_latency_at_other_rates"][f"{other:g}"] = _median_p99(others)
    if "sweep" in parts:
        step(
            "timer sweep",
            lambda: figures.update(sweep=sweep_run(args.registrations, args.due, args.repeat)),
        )
    if "cases" in parts:
        step("find and explain", lambda: figures.update(cases=cases_run(args.registrations)))
    if "replay" in parts:
        step("replay", lambda: figures.update(replay=lives_run(args.registrations)))
    if parts & {"ceiling", "soak"}:  # #20
        from tests.perf import scale  # it builds on this module's pieces
    if "ceiling" in parts:  # the worker against two relays, live and on a backlog
        figures["ceiling"] = scale.ceiling_run(args.messages, args.repeat)
        print(scale.ceiling_report(figures["ceiling"]))
    if "soak" in parts:
        rate = args.soak_rate or 0.7 * scale.worker_rate("live", worker_mix(args.messages))
        figures["soak"] = scale.soak_run(args.soak or 1_000_000, round(rate))
        print(scale.soak_report(figures["soak"]))
        _write(figures, (args.json or LATEST).parent / "soak.json", scale.soak_plot, "soak")
    if "scale" in parts:
        from tests.perf import at_scale

        sizes = tuple(args.scale) if args.scale else at_scale.SIZES
        if max(sizes) > at_scale.LARGEST or min(sizes) < 1 or list(sizes) != sorted(set(sizes)):
            parser.error(
                f"--scale: growing sizes from 1 to {at_scale.LARGEST:,}: a service has 999,999"
                " registration numbers (R21) and the worker's own requests need some left"
            )
        figures["scale"] = at_scale.run(sizes, args.messages, args.prunable, args.repeat)
        print(at_scale.report(figures["scale"]))
        _write(figures, (args.json or LATEST).parent / "scale.json", at_scale.plot, "scale")
    if "tracing" in parts:
        step(
            "tracing",
            lambda: figures.update(tracing=tracing_run(args.messages, args.repeat, 0.1)),
        )
    if "retention" in parts:
        rate = figures.get("worker", {}).get("latency_rate_msg_per_s", args.retention_rate)
        step(
            "retention",
            lambda: figures.update(retention=retention_run(args.prunable, rate, args.repeat)),
        )
    if parts != set(DEFAULT_PARTS):
        print(json.dumps(figures, indent=2))  # a partial run: written only where asked
        if args.json:
            print(f"figures written to {_save(figures, args.json)}")
        return 0
    for key in ("bare_no_confirms", "bare_classic_no_confirms"):
        figures[f"ratio_to_{key}"] = round(figures["worker"]["msg_per_s"] / figures[key], 3)
    target = _save(figures, args.json or LATEST)
    print(report(figures))
    print(f"\nfigures written to {target}")
    return 0


def _write(
    figures: dict[str, Any], path: Path, plot: Callable[[dict[str, Any], Path], Path], part: str
) -> None:
    """#20's parts: the figures as JSON and their plot as a PNG beside it."""
    _save(figures, path)
    print(f"figures written to {path}, the plot to {plot(figures[part], path.with_suffix('.png'))}")


def _save(figures: dict[str, Any], path: Path) -> Path:
    """The figures as JSON at `path`, its folder made if need be."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(figures, indent=2) + "\n")
    return path


def step(name: str, action: Callable[[], None] = lambda: None) -> None:
    """Say what is being measured (on stderr), then measure it."""
    print(f"... {name}", file=sys.stderr, flush=True)
    action()


def _spread(values: list[float], unit: str = "") -> str:
    return f"runs {', '.join(f'{v:,.0f}' for v in sorted(values))}{unit}"


def report(f: dict[str, Any]) -> str:
    w, s = f["worker"], f["sweep"]
    rss = w["rss_kib"]
    lat = w["latency_ms"]
    p99s = [r["latency_ms"]["p99"] for r in f["worker_runs"]]
    bare_rows = [
        (f"bare relay, {what}, {queues}", f"{f[key]:,.0f} msg/s", _spread(f[f"{key}_runs"]))
        for key, what, queues in (
            ("bare_no_confirms", "no confirms", "quorum queues"),
            ("bare_confirms", "a confirm per message", "quorum"),
            ("bare_classic_no_confirms", "no confirms", "classic queues"),
            ("bare_classic_confirms", "a confirm per message", "classic"),
        )
    ]
    rows = [
        (f"median of {f['repeat']} runs", "", ""),
        *bare_rows,
        (
            f"worker, {w['messages']:,} messages",
            f"{w['msg_per_s']:,.0f} msg/s",
            _spread([r["msg_per_s"] for r in f["worker_runs"]]),
        ),
        (
            "  CPU a message, by process",
            ", ".join(
                f"{name.replace('_', ' ')} {us:,.0f}"
                for name, us in w.get("cpu_us_per_msg_by_process", {}).items()
            )
            + " µs",
            "where the two cores go while the worker runs flat out",
        ),
        (
            "worker / bare relay without confirms",
            f"{f['ratio_to_bare_no_confirms']:.0%}",
            f"target ≥ 50 %; {f['ratio_to_bare_classic_no_confirms']:.0%} of the classic one",
        ),
        (
            f"latency at {w['latency_rate_msg_per_s']:,.0f} msg/s",
            f"p50 {lat['p50']} / p95 {lat['p95']} / p99 {lat['p99']} ms",
            f"target p99 < 25 ms; p99 {_spread(p99s, ' ms')}",
        ),
        (
            "  cores busy meanwhile",
            ", ".join(
                f"{name.replace('_', ' ')} {cores:.2f}"
                for name, cores in w.get("cores_busy_at_half_load", {}).items()
            ),
            "of the machine's two",
        ),
        (
            "  the bare relay at that rate",
            "p50 {p50} / p95 {p95} / p99 {p99} ms".format(**f["bare_latency_ms"]),
            "the broker's own share (quorum queues, no confirm waits); p99 "
            + _spread([r["p99"] for r in f["bare_latency_runs"]], " ms"),
        ),
        *(
            (
                f"latency at {float(r):,.0f} msg/s",
                f"p50 {m['ms']['p50']} / p95 {m['ms']['p95']} / p99 {m['ms']['p99']} ms",
                _bare_beside(f, r),
            )
            for r, m in w["latency_at_other_rates"].items()
        ),
        (
            f"empty sweep, {s['registrations']:,} registrations",
            f"{s['empty_sweep_ms']['median']} ms (max {s['empty_sweep_ms']['max']})",
            "target < 5 ms",
        ),
        (
            f"sweep, {s['due']:,} due",
            f"{s['timers_per_s']:,.0f} timers/s",
            f"target ≥ 5,000/s; {_spread(s['timers_per_s_runs'])}",
        ),
        (
            f"find, {f['cases']['registrations']:,} registrations, 100 rows",
            f"{f['cases']['find_worst_median_ms']} ms (the slowest filter's median)",
            "target < 50 ms; each filter in the JSON",
        ),
        (
            "explain, one registration",
            "{median_ms} ms (max {max_ms})".format(**f["cases"]["explain_ms"]),
            "target < 50 ms",
        ),
        (
            "replay, one registration of 20 messages",
            "{median_ms} ms (max {max_ms})".format(**f["replay"]["replay_20_messages_ms"]),
            "target < 5 ms",
        ),
        (
            f"replay --what-if, {f['replay']['registrations']:,} archived registrations",
            f"{f['replay']['what_if_per_s']:,} registrations/s",
            "target ≥ 5,000/s",
        ),
        (
            f"retention, a pass over {f['retention']['prune_alone']['rows']:,} rows",
            f"{f['retention']['prune_alone']['rows_per_s']:,} rows/s",
            "target ≥ 50,000/s",
        ),
        (
            f"p99 at {f['retention']['latency_rate_msg_per_s']:,.0f} msg/s, retention beside",
            "{with} ms (without {without} ms)".format(**f["retention"]["p99_ms"]),
            f"{f['retention']['p99_ratio']}×; target ≤ 1.5×",
        ),
        (
            "throughput, tracing on (10 % sampled) over off, interleaved",
            f"{f['tracing']['on_msg_per_s']:,} / {f['tracing']['off_msg_per_s']:,} msg/s",
            f"{f['tracing']['on_over_off']:.1%}; target ≥ 90 %",
        ),
        (
            "worker RSS",
            f"{rss['before'] / 1024:.1f} → {rss['after_latency'] / 1024:.1f} MiB",
            f"growth {(rss['after_latency'] - rss['before']) / 1024:.1f} MiB; target < 20 MB",
        ),
    ]
    width = [max(len(r[i]) for r in rows) for i in range(3)]
    m = f["machine"]
    head = f"{m['cores']} cores, {m['memory_gib']} GiB, {m['cpu']}; RabbitMQ {m['rabbitmq']}, PostgreSQL {m['postgresql']}, Python {m['python']}"
    return (
        head
        + "\n\n"
        + "\n".join("  ".join(c.ljust(width[i]) for i, c in enumerate(r)).rstrip() for r in rows)
    )


if __name__ == "__main__":
    sys.exit(main())
