"""Stopping and restarting a real `provisioner run`: SIGTERM stops it gracefully, kill -9 takes the
embedded broker with it, and a restart after kill -9 makes progress at once instead of waiting out
the dead process's leases."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

from provisioner.engine.store import Store
from tests.conftest import scim_users
from tests.processes import engine_process, process_alive, wait_for
from tests.test_end_to_end import ADA, BOB, write


def config_file(tmp_path: Path, scim_url: str) -> Path:
    people = tmp_path / "people.json"
    write(people, ADA)
    config = tmp_path / "config.yaml"
    config.write_text(
        json.dumps(
            {
                "store": {"url": f"sqlite:///{tmp_path / 'state.db'}"},
                "engine": {"deferred_interval": "1s"},
                "sources": [{"name": "hr", "type": "file", "path": str(people), "poll_interval": "1s"}],
                "targets": [{"name": "app", "type": "scim", "base_url": scim_url}],
                "policies": [{"name": "everyone", "grant": [{"target": "app"}]}],
            }
        )
    )
    return config


def brokers_of(pid: int) -> list[int]:
    """The embedded brokers this engine process started (its Tansu children)."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            stat = (entry / "stat").read_text() if entry.name.isdigit() else ""
        except OSError:
            continue
        if stat and "tansu" in stat.split(")", 1)[0] and int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            found.append(int(entry.name))
    return found


def started_engine(process: subprocess.Popen[bytes], scim: Any, emails: set[str]) -> list[int]:
    """Waits until the engine has provisioned these people; returns its broker pids."""
    wait_for(lambda: {u["userName"] for u in scim_users(scim)} >= emails, timeout=60, what="users provisioned")
    brokers = brokers_of(process.pid)
    assert len(brokers) == 1, brokers
    return brokers


def test_sigterm_stops_gracefully_and_takes_the_broker_along(tmp_path, scim_server, scim):
    output = tmp_path / "engine.log"
    with output.open("wb") as out, engine_process(config_file(tmp_path, scim_server.url), output=out) as process:
        [broker] = started_engine(process, scim, {"ada@example.com"})
        os.kill(process.pid, signal.SIGTERM)  # the engine only: its group would hide an orphan
        assert process.wait(timeout=30) == 0
        assert not process_alive(broker)
    text = output.read_text()
    assert "stopped" in text and "Traceback" not in text, text
    # The relay lease was handed back, so nothing waits for it.
    store = Store(f"sqlite:///{tmp_path / 'state.db'}")
    assert store.schedule.acquire_lease("relay", "someone-else", 15, record=False)
    store.close()


def test_kill_9_takes_the_broker_along_and_a_restart_makes_progress_at_once(tmp_path, scim_server, scim):
    config = config_file(tmp_path, scim_server.url)
    with engine_process(config) as process:
        [broker] = started_engine(process, scim, {"ada@example.com"})
        os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=10)
        wait_for(lambda: not process_alive(broker), timeout=5, what="broker gone after kill -9")

    write(tmp_path / "people.json", ADA, BOB)
    output = tmp_path / "restart.log"
    with output.open("wb") as out, engine_process(config, output=out) as process:
        # From the moment the new engine's broker is up, not from interpreter start-up.
        wait_for(lambda: brokers_of(process.pid), timeout=60, what="restarted engine's broker")
        started = time.monotonic()
        wait_for(lambda: "bob@example.com" in {u["userName"] for u in scim_users(scim)}, timeout=30, what="bob")
        elapsed = time.monotonic() - started
    assert elapsed < 2.0, f"the restarted engine took {elapsed:.1f}s to apply a change"
