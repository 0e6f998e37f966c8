"""/metrics counts what happened; /readyz follows the broker; logs hold no personal data."""

from __future__ import annotations

import json
import socket
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import TODAY, Bus, rabbitmqctl
from tests.integration.processes import WorkerProcess, wait_until
from worker import config
from worker import samples as s
from worker.bootstrap import bootstrap
from worker.consumer.loop import Loop

pytestmark = pytest.mark.integration
KEY = s.key("1543301276")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def get(port: int, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()
    except OSError:
        return 0, ""


def sample(text: str, name: str, **labels: str) -> float:
    wanted = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        metric, _, value = line.rpartition(" ")
        if metric == (f"{name}{{{wanted}}}" if labels else name):
            return float(value)
    return 0.0


@pytest.fixture
def running(settings: config.Settings) -> Iterator[tuple[Loop, int]]:
    port = free_port()
    app = bootstrap(settings.model_copy(update={"metrics_port": port}))
    runner = Loop(app)
    runner.serve_http()
    thread = threading.Thread(target=runner.run, daemon=True)
    thread.start()
    wait_until(lambda: get(port, "/readyz")[0] == 200, 30, "readiness")
    yield runner, port
    runner.stopping.set()
    thread.join(timeout=30)


def test_metrics_show_what_happened(
    running: tuple[Loop, int], bus: Bus, settings: config.Settings
) -> None:
    _runner, port = running
    _, before = get(port, "/metrics")
    bus.publish(s.request(KEY))
    bus.publish(s.request(s.key("1543301277")))  # invalid enterprise number: refused
    bus.publish(b"{not json")
    bus.publish(s.approval(s.key("0995127057"), TODAY))  # nobody asked: ignored

    def grew(name: str, **labels: str) -> float:
        _, now = get(port, "/metrics")
        return sample(now, name, **labels) - sample(before, name, **labels)

    # Dead-lettering happens before the batch's transaction, publishing after it: wait for all.
    wait_until(
        lambda: (
            grew("kmo_messages_dead_lettered_total", reason="not_json") == 1
            and grew("kmo_message_handling_seconds_count") >= 3
            and grew("kmo_events_published_total", type="decision.refused") >= 1
            and grew("kmo_events_published_total", type="decision.request_accepted") >= 1
        ),
        30,
        "metrics",
    )
    assert (
        grew("kmo_messages_consumed_total", type="registration.requested", outcome="handled") == 2
    )
    assert grew("kmo_events_published_total", type="decision.request_accepted") == 1
    assert grew("kmo_events_published_total", type="decision.refused") == 1
    assert grew("kmo_message_handling_seconds_count") == 3
    _, text = get(port, "/metrics")
    assert sample(text, "kmo_broker_connected") == 1
    assert sample(text, "kmo_last_publish_timestamp_seconds") > 0
    for name in (
        "kmo_outbox_backlog_events",
        "kmo_timers_due",
        "kmo_timers_overdue",
        "kmo_registrations",
    ):
        assert f"# TYPE {name} gauge" in text


@pytest.fixture
def broker_comes_back() -> Iterator[None]:
    yield
    rabbitmqctl("start_app")
    rabbitmqctl("await_startup")


def test_readyz_follows_the_broker(running: tuple[Loop, int], broker_comes_back: None) -> None:
    _runner, port = running
    assert get(port, "/readyz") == (200, "ok\n")
    assert get(port, "/healthz")[0] == 200
    rabbitmqctl("stop_app")
    wait_until(lambda: get(port, "/readyz")[0] == 503, 30, "not ready")
    assert "broker" in get(port, "/readyz")[1]
    assert get(port, "/healthz")[0] == 200  # alive: it is waiting to reconnect, not stuck
    rabbitmqctl("start_app")
    rabbitmqctl("await_startup")
    wait_until(lambda: get(port, "/readyz")[0] == 200, 90, "ready again")


def test_readyz_is_false_on_an_unmigrated_database(settings: config.Settings) -> None:
    bare = settings.database_url.rsplit("/", 1)[0] + "/postgres"
    port = free_port()
    app = bootstrap(settings.model_copy(update={"database_url": bare, "metrics_port": port}))
    runner = Loop(app)
    runner.serve_http()
    thread = threading.Thread(target=runner.run, daemon=True)
    thread.start()
    try:
        wait_until(
            lambda: get(port, "/readyz")[0] == 503 and "migrated" in get(port, "/readyz")[1],
            30,
            "the verdict",
        )
    finally:
        runner.stopping.set()
        thread.join(timeout=30)


def test_logs_of_a_handled_request_hold_no_personal_data(
    settings: config.Settings, bus: Bus, tmp_path: Path
) -> None:
    request = s.request(
        KEY,
        iban="BE68 5390 0754 7034",
        contact={"email": "an.peeters@example.be", "language": "nl"},
        requester={"id_type": "insz", "id_number": "85.01.01-003.13", "user_right": "nope"},
    )
    broken = s.request(s.key("0995127057"), iban="BE68539007547034")
    broken["data"]["contact"]["email"] = "not-an-address"
    bus.publish(request)
    bus.publish(broken)  # its schema error would quote the value
    worker = WorkerProcess(settings, tmp_path, "--until-idle", KMO_LOG_LEVEL="debug")
    assert worker.wait() == 0
    log = worker.log()
    lines = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
    assert any(
        line["event"] == "message_handled" and line["message_id"] == request["id"] for line in lines
    )
    assert any(line["event"] == "message_dead_lettered" for line in lines)
    # The process settled its heap before work: start-up objects out of the collector's sight.
    started = next(line for line in lines if line["event"] == "worker_started")
    assert started["frozen_objects"] > 10_000
    for secret in (
        "BE68 5390 0754 7034",
        "BE68539007547034",
        "an.peeters@example.be",
        "85.01.01-003.13",
        "85010100313",
        "info@peeters.example",
    ):
        assert secret not in log
