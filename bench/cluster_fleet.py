"""The parts bench/cluster.py runs: engine processes (`provisioner run`) on one cluster and store,
their configs, the people file they poll, and the machine's CPU use while they work."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import uuid
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx

from provisioner.engine.kit.servers import free_port
from provisioner.engine.store import Store
from tests.cluster import TansuCluster
from tests.processes import engine_process


def person(i: int, department: str) -> dict[str, str]:
    return {
        "remote_id": str(i),
        "first_name": f"First{i}",
        "last_name": f"Last{i}",
        "work_email": f"user{i}@example.com",
        "department": department,
        "employment_type": "full_time",
        "status": "active",
    }


def write_people(path: Path, people: list[dict[str, str]]) -> None:
    part = path.with_suffix(".part")
    part.write_text(json.dumps(people))
    part.replace(path)  # whole: a poll never reads half a file


class Fleet:
    """Engine processes (`provisioner run`) on one config each (their own listen port)."""

    def __init__(self, folder: Path, base: dict[str, Any], stack: ExitStack):
        self.folder, self.base, self.stack = folder, base, stack
        folder.mkdir(parents=True, exist_ok=True)
        self.engines: dict[str, tuple[subprocess.Popen[bytes], int]] = {}

    def config(self, name: str, port: int) -> Path:
        path = self.folder / f"{name}.yaml"
        path.write_text(json.dumps({**self.base, "engine": {"listen": f"127.0.0.1:{port}"}}))
        return path

    def start(self, name: str) -> None:
        port = free_port()
        log = self.stack.enter_context((self.folder / f"{name}.log").open("wb"))
        process = self.stack.enter_context(engine_process(self.config(name, port), output=log))
        self.engines[name] = (process, port)

    def kill(self, name: str) -> None:
        process, _ = self.engines.pop(name)
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=20)

    def pids(self) -> list[int]:
        return [process.pid for process, _ in self.engines.values()]

    def ports(self) -> dict[str, int]:
        return {name: port for name, (_, port) in self.engines.items()}

    def pid_of(self) -> dict[str, int]:
        return {name: process.pid for name, (process, _) in self.engines.items()}

    def ready(self) -> dict[str, int]:
        out = {}
        for name, (_, port) in self.engines.items():
            try:
                out[name] = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=3).status_code
            except httpx.HTTPError:
                out[name] = 0
        return out


def base_config(store: str, cluster: TansuCluster, app: str, people: Path, ceiling: int, adaptive: bool) -> dict:
    return {
        "store": {"url": store},
        "kafka": {"bootstrap_servers": cluster.bootstrap, "topic_prefix": f"b{uuid.uuid4().hex[:8]}"},
        "sources": [{"name": "hr", "type": "file", "path": str(people), "poll_interval": "1s"}],
        "targets": [
            {
                "name": "app",
                "type": "scim",
                "base_url": app,
                "bulk": False,  # one request per write: the app's counts are the engine's writes
                "concurrency": ceiling,
                "adaptive_concurrency": adaptive,
            }
        ],
        "policies": [
            {"name": "all", "when": "true", "grant": [{"target": "app", "groups": ["{{ worker.department }}"]}]}
        ],
        "safety": {"max_deprovisions": None, "max_deprovision_ratio": None},
    }


def cpu_jiffies() -> tuple[int, int]:
    """(busy, total) CPU time of the whole machine so far, from /proc/stat."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return sum(fields) - idle, sum(fields)


def process_cpu(pids: list[int]) -> float:
    """CPU seconds (user + system) these processes have used so far."""
    ticks = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        ticks += int(fields[11]) + int(fields[12])  # utime, stime
    return ticks / os.sysconf("SC_CLK_TCK")


def tcp_counters() -> dict[str, int]:
    """The machine's TCP counters that say a listener was too slow to accept (its backlog full: a
    dropped SYN costs the client a one-second retransmit)."""
    lines = [line.split() for line in Path("/proc/net/netstat").read_text().splitlines() if line.startswith("TcpExt:")]
    named = dict(zip(lines[0][1:], (int(v) for v in lines[1][1:]), strict=True))
    return {k: named.get(k, 0) for k in ("ListenOverflows", "ListenDrops", "TCPSynRetrans")}


def cpu_busy(before: tuple[int, int]) -> float:
    """Percent of the machine's CPU busy since `before`: whether a figure is the app's or the machine's limit."""
    busy, total = cpu_jiffies()
    return 100.0 * (busy - before[0]) / max(1, total - before[1])


def until(condition: Callable[[], bool], timeout: float, step: float = 0.5) -> float | None:
    """Seconds until `condition` held, or None after `timeout`."""
    start = time.monotonic()
    while not condition():
        if time.monotonic() - start > timeout:
            return None
        time.sleep(step)
    return time.monotonic() - start


def applied(store: Store, people: int) -> Callable[[], bool]:
    return lambda: store.outbox.pending_count() == 0 and len(store.links.all()) >= people
