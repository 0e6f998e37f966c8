"""The benchmark at the size of years (#20): a stronger ceiling, measured live and draining a
backlog. Parts of `python -m tests.perf.benchmark` (`--parts ceiling`).

The ceiling: beside the one-at-a-time bare relay (`bare_relay.py`), a batched one
(`batched_relay.py`) that reads and writes as the worker does; both relay the worker's own mix of
messages on quorum queues. Each relay and the worker are measured two ways: live (the load
generator publishes while they consume) and draining a backlog (every message queued before
they start; timed from the first event out to the last, so that no one's start-up counts).
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from kombu import Exchange, Queue

from tests.perf import benchmark as b
from tests.perf import plots

MODES = ("live", "backlog")
RELAYS = {  # name: (module, confirms)
    "bare": ("tests.perf.bare_relay", False),
    "batched": ("tests.perf.batched_relay", False),
    "batched_confirms": ("tests.perf.batched_relay", True),
}
# The worker as one process (what the targets are about), and as two replicas on the one queue:
# what an operator gets from scaling out on the same two cores.
WORKERS = {"worker": 1, "worker_2": 2}


def relay_rate(name: str, mode: str, mix: list[tuple[bytes, str]]) -> float:
    """Messages per second through one relay, in one mode."""
    module, with_confirms = RELAYS[name]
    vhost = b.fresh_vhost()
    url = f"{b.AMQP}/{vhost}"
    bodies = [(body, "bench.in") for body, _key in mix]
    try:
        sink = b.Sink(url, b._bare_queues(url, "quorum"), len(bodies))
        command = [sys.executable, "-m", module, url, str(len(bodies))]
        command += ["confirms" if with_confirms else "no", "quorum"]
        direct = Exchange("", type="direct")
        if mode == "backlog":  # queued before the relay starts
            b.publish_all(url, direct, bodies)
        relay = subprocess.Popen(command, cwd=b.ROOT)
        if mode == "live":
            if not b.wait_for_consumers(url, "bench.in", 1):
                raise TimeoutError("no consumer on bench.in")
            started = time.perf_counter()
            b.publish_all(url, direct, bodies)
        sink.arrived(1800)
        relay.wait(60)
        if mode == "backlog":  # first event out to last: no start-up counts
            return (len(bodies) - 1) / (sink.last - sink.first)
        return len(bodies) / (sink.last - started)
    finally:
        b.drop(vhost=vhost)


def worker_rate(
    mode: str, mix: list[tuple[bytes, str]], on: str | None = None, replicas: int = 1
) -> float:
    """Messages per second through `kmo-worker run` (`replicas` processes on one queue, as a
    deployment scales out), in one mode, on a fresh database or the database `on` (kept)."""
    vhost, db = b.fresh_vhost(), on or b.fresh_database()
    env = b.worker_settings(vhost, db)
    url = env["KMO_BROKER_URL"]
    inbound = Exchange("kmo.inbound", type="topic", durable=True)
    events = Queue("bench.events", durable=True, no_declare=True)
    expected = 2 * (len(mix) // 3)  # request_accepted and registered per registration
    workers: list[subprocess.Popen[bytes]] = []
    try:
        workers = [b.start_worker(env)]  # declares the topology
        if mode == "backlog":
            _stop(workers)
            b.publish_all(url, inbound, mix)
            sink = b.Sink(url, events, expected)
            workers = b.start_workers(env, replicas)  # together: one does not drain it alone
            sink.arrived(1800)
            rate = len(mix) / (sink.last - sink.first)
        else:
            workers += b.start_workers(env, replicas - 1, migrate=False, consuming=replicas)
            sink = b.Sink(url, events, expected)
            started = time.perf_counter()
            b.publish_all(url, inbound, mix)
            sink.arrived(1800)
            rate = len(mix) / (sink.last - started)
        return rate
    finally:
        _stop(workers)
        b.drop(vhost=vhost, db=None if on else db)


def _stop(workers: list[subprocess.Popen[bytes]]) -> None:
    for worker in workers:
        worker.terminate()
    for worker in workers:
        worker.wait(60)
    workers.clear()


def ceiling_run(count: int, repeat: int) -> dict[str, Any]:
    """Each relay and the worker, live and on a backlog, `repeat` times interleaved; medians,
    and the worker's ratio to each relay in each mode."""
    mix = b.worker_mix(count)
    runs: dict[str, dict[str, list[float]]] = {mode: {} for mode in MODES}
    for run in range(repeat):
        for mode in MODES:
            for name in (*RELAYS, *WORKERS):
                b.step(f"ceiling: {name}, {mode}, {run + 1}")
                if name in WORKERS:
                    rate = worker_rate(mode, mix, replicas=WORKERS[name])
                else:
                    rate = relay_rate(name, mode, mix)
                runs[mode].setdefault(name, []).append(round(rate, 1))
    figures: dict[str, Any] = {"messages": len(mix), "queue_type": "quorum", "runs": runs}
    for mode in MODES:
        medians = {name: statistics.median(rates) for name, rates in runs[mode].items()}
        figures[mode] = medians | {
            f"{worker}_to_{name}": round(medians[worker] / medians[name], 3)
            for worker in WORKERS
            for name in RELAYS
        }
    return figures


def ceiling_report(f: dict[str, Any]) -> str:
    rows = [
        "| msg/s (median) | bare, one at a time | batched | batched, confirms | worker |"
        " worker / bare | worker / batched | 2 replicas | 2 replicas / batched |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for mode in MODES:
        m = f[mode]
        rows.append(
            f"| {mode} | {m['bare']:,.0f} | {m['batched']:,.0f} | {m['batched_confirms']:,.0f}"
            f" | {m['worker']:,.0f} | {m['worker_to_bare']:.0%} | {m['worker_to_batched']:.0%}"
            f" | {m['worker_2']:,.0f} | {m['worker_2_to_batched']:.0%} |"
        )
    return "\n".join(rows)


# -- the soak -----------------------------------------------------------------------------------

WINDOW = 100_000  # messages per reported window


def soak_run(count: int, rate: float) -> dict[str, Any]:
    """`count` messages of the realistic mix through one long-running `kmo-worker run`, offered
    at `rate` by a paced load generator; per window of 100,000 messages its throughput, its p99
    from publish to event, and the worker's RSS; the database's sizes at the end."""
    vhost, db = b.fresh_vhost(), b.fresh_database()
    env = b.worker_settings(vhost, db)
    url = env["KMO_BROKER_URL"]
    inbound = Exchange("kmo.inbound", type="topic", durable=True)
    windows = []
    try:
        worker = b.start_worker(env)
        sized = [(offset, min(WINDOW, count - offset)) for offset in range(0, count, WINDOW)]
        total = sum(2 * (size // 3) for _, size in sized)  # the events every window causes
        sink = b.Sink(url, Queue("bench.events", durable=True, no_declare=True), total)
        rss_start = b.rss_kib(worker.pid)
        before = database_counters()
        for index, (offset, size) in enumerate(sized, 1):
            mix = b.worker_mix(size, offset=offset)  # off the clock
            b.step(f"soak: window {index} of {len(sized)}, at {rate:,.0f} msg/s")
            expected = sink.count + 2 * (len(mix) // 3)  # counted before any can arrive
            started = time.perf_counter()
            sent = b.publish_all(url, inbound, mix, rate=rate)
            deadline = time.monotonic() + 600
            while sink.count < expected and time.monotonic() < deadline:
                time.sleep(0.05)
            counters = database_counters()
            windows.append(
                {
                    "messages": len(mix),
                    "msg_per_s": round(len(mix) / (sink.last - started), 1),
                    "latency_ms": b._percentiles(sent, sink)["ms"],
                    "rss_kib": b.rss_kib(worker.pid),
                    "database": {k: v - before[k] for k, v in counters.items()},
                }
            )
            before = counters
            for key in sent:  # the window's arrivals are counted; keep the sink's memory flat
                sink.arrivals.pop(key, None)
        worker.terminate()
        worker.wait(60)
        return {
            "messages": count,
            "offered_msg_per_s": rate,
            "rss_kib_at_start": rss_start,
            "windows": windows,
            "last_to_first_throughput": round(
                windows[-1]["msg_per_s"] / windows[0]["msg_per_s"], 3
            ),
            "rss_growth_mib": round((windows[-1]["rss_kib"] - rss_start) / 1024, 1),
            "p99_worst_to_first": round(  # the target: no window worse than 1.5 times
                max(w["latency_ms"]["p99"] for w in windows) / windows[0]["latency_ms"]["p99"], 2
            ),
            "p99_last_to_first": round(
                windows[-1]["latency_ms"]["p99"] / windows[0]["latency_ms"]["p99"], 2
            ),
            "database": sizes(db),
        }
    finally:
        b.drop(vhost=vhost, db=db)


def database_counters() -> dict[str, int]:
    """PostgreSQL's own counters (the whole server's): checkpoints asked for because the WAL
    reached `max_wal_size` and on time, buffers a backend had to write out itself (shared
    buffers full), WAL bytes, and WAL writes forced because its buffers were full. Their change
    over a window says whether the database stalled the messages in it."""
    with b.psycopg.connect(f"{b.PG}/postgres", autocommit=True) as conn:
        row = conn.execute(
            "SELECT checkpoints_req, checkpoints_timed, buffers_backend, wal_bytes::bigint,"
            " wal_buffers_full FROM pg_stat_bgwriter, pg_stat_wal"
        ).fetchone()
    assert row is not None
    names = ("checkpoints_req", "checkpoints_timed", "buffers_backend", "wal_bytes", "wal_full")
    return dict(zip(names, (int(v) for v in row), strict=True))


def sizes(db: str) -> dict[str, dict[str, int]]:
    """Rows, table bytes and index bytes of each of the worker's tables."""
    with b.psycopg.connect(f"{b.PG}/{db}", autocommit=True) as conn:
        conn.execute("ANALYZE")  # the row counts below are the statistics' estimates
        found = conn.execute(
            "SELECT c.relname, c.reltuples::bigint, pg_table_size(c.oid), pg_indexes_size(c.oid)"
            " FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE n.nspname = 'public' AND c.relkind = 'r' ORDER BY c.relname"
        ).fetchall()
    return {
        name: {"rows": rows, "table": table, "indexes": idx} for name, rows, table, idx in found
    }


def soak_report(f: dict[str, Any]) -> str:
    rows = [
        "| window | msg/s | p50 ms | p99 ms | RSS MiB | checkpoints asked / timed |"
        " buffers a backend wrote | WAL MiB |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for index, w in enumerate(f["windows"], 1):
        ms, pg = w["latency_ms"], w["database"]
        rows.append(
            f"| {index} | {w['msg_per_s']:,.0f} | {ms['p50']} | {ms['p99']} |"
            f" {w['rss_kib'] / 1024:,.1f} | {pg['checkpoints_req']} / {pg['checkpoints_timed']}"
            f" | {pg['buffers_backend']:,} | {pg['wal_bytes'] / 2**20:,.0f} |"
        )
    return "\n".join(rows)


def soak_plot(f: dict[str, Any], path: Path) -> Path:
    """Throughput, p99 and RSS per window, as a PNG beside the JSON; the targets against the
    first window's (90 % of its throughput, 1.5 times its p99, 20 MB over the start)."""
    windows = f["windows"]
    first = windows[0]
    return plots.panels(
        path,
        "window of 100,000 messages",
        range(1, len(windows) + 1),
        [
            ("msg/s", [w["msg_per_s"] for w in windows], 0.9 * first["msg_per_s"]),
            ("p99 ms", [w["latency_ms"]["p99"] for w in windows], 1.5 * first["latency_ms"]["p99"]),
            ("RSS MiB", [w["rss_kib"] / 1024 for w in windows], f["rss_kib_at_start"] / 1024 + 20),
        ],
    )
