"""A stop signal must never wait for a lock: it arrives between two bytecodes of the main
thread, which may hold one (the log writer's, for instance). A handler that logged hung the
worker on SIGTERM whenever the signal landed mid-write, deaf even to further signals.

The scenario runs in a child process killed after a deadline, so a regression fails the test
instead of hanging the test run."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
from pathlib import Path

from worker import config
from worker.bootstrap import bootstrap
from worker.consumer.loop import Loop

SCENARIO = textwrap.dedent(
    """
    import os, signal, sys, threading
    from structlog._output import WRITE_LOCKS
    from worker import config
    from worker.bootstrap import bootstrap
    from worker.consumer.loop import Loop
    from worker.observability import logs

    folder = sys.argv[1]
    runner = Loop(bootstrap(config.Settings(database_url=f"sqlite:///{folder}/w.sqlite3")))
    runner.install_signal_handlers()
    logs.get("test").info("warming_up")  # the log writer exists now, with its lock
    held = list(WRITE_LOCKS.values())
    assert held, "no log writer lock to hold"
    for lock in held:
        lock.acquire()  # as if the main thread were in the middle of writing a log line
    threading.Thread(target=lambda: os.kill(os.getpid(), signal.SIGTERM)).start()
    for _ in range(10_000_000):  # the handler runs at a bytecode boundary of this thread
        if runner.stopping.is_set():
            break
    for lock in held:
        lock.release()
    print("stopped" if runner.stopping.is_set() else "not stopped", runner.stopping.signal)
    """
)


def test_sigterm_while_the_log_writer_holds_its_lock_sets_the_flag_and_returns(
    tmp_path: Path,
) -> None:
    child = subprocess.run(
        [sys.executable, "-c", SCENARIO, str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=30,  # a handler that waits for the lock never returns: TimeoutExpired
    )
    assert child.returncode == 0, child.stderr
    assert child.stdout.strip() == "stopped SIGTERM"


def test_the_stop_flag_ends_a_pause_early(tmp_path: Path) -> None:
    settings = config.Settings(database_url=f"sqlite:///{tmp_path / 'w.sqlite3'}")
    runner = Loop(bootstrap(settings))
    threading.Timer(0.1, runner.stopping.set).start()
    assert runner.stopping.wait(30) is True
