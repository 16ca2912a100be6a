"""Real engine processes for tests, a Kafka-protocol broker of their own, and the embedded brokers
they start.

Every process a test starts runs in its own process group and is stopped in `finally`: SIGTERM
(the graceful path), then SIGKILL for the whole group if it is still there after a deadline, so
no test leaves a process behind whatever it asserted.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, TypeVar

import httpx

from provisioner.engine.kit.servers import free_port, wait_for_port
from provisioner.engine.runtime.bus import broker_command

# Set for the whole test session (tests/conftest.py); inherited by every process the tests start,
# so the brokers of this session can be told from those of other runs on the same machine.
SESSION_MARKER = "PROVISIONER_TEST_SESSION"
T = TypeVar("T")


def wait_for(condition: Callable[[], T], timeout: float = 60.0, what: str = "condition") -> T:
    """Poll `condition` until it gives something truthy (returned), or fail after `timeout`."""
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        assert time.monotonic() < deadline, f"{what} not met within {timeout:.0f}s"
        time.sleep(0.05)
    return value


def answers(url: str) -> bool:
    """An HTTP GET of `url` answers 200 (False while nothing listens there yet)."""
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def stop_group(process: subprocess.Popen[bytes], timeout: float = 20.0) -> None:
    """SIGTERM, then SIGKILL to the process group; returns once the process is reaped."""
    if process.poll() is None:
        with _gone_ok():
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            pass
    with _gone_ok():
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=10)


@contextmanager
def _gone_ok() -> Iterator[None]:
    try:
        yield
    except ProcessLookupError:
        pass


@contextmanager
def engine_process(config: Path, *, output: IO[bytes] | int = subprocess.DEVNULL) -> Iterator[subprocess.Popen[bytes]]:
    """`provisioner run -c CONFIG` as a real process (its own group), stopped in finally."""
    process = subprocess.Popen(
        [sys.executable, "-m", "provisioner.engine.cli", "run", "-c", str(config)],
        stdout=output,
        stderr=subprocess.STDOUT if output is not subprocess.DEVNULL else subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        yield process
    finally:
        stop_group(process)


def session_brokers() -> set[int]:
    """Pids of embedded brokers (Tansu) started by this test session, wherever they were reparented."""
    marker = os.environ.get(SESSION_MARKER)
    found: set[int] = set()
    if not marker:
        return found
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv0 = (entry / "cmdline").read_bytes().split(b"\0", 1)[0]
            if b"tansu" not in os.path.basename(argv0):
                continue
            environ = (entry / "environ").read_bytes().split(b"\0")
        except OSError:  # gone meanwhile, or not ours to read
            continue
        if f"{SESSION_MARKER}={marker}".encode() in environ:
            found.add(int(entry.name))
    return found


def process_alive(pid: int) -> bool:
    """True while the pid exists and is not a zombie."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


@contextmanager
def broker() -> Iterator[str]:
    """A Tansu broker several engine processes share (the scale-out shape), in its own group."""
    port = free_port()
    process = subprocess.Popen(
        broker_command(port),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        wait_for_port(port)
        yield f"127.0.0.1:{port}"
    finally:
        stop_group(process, timeout=5)


@contextmanager
def engine(config: Path, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """`provisioner run` with its output in `log` (wide, so lines are not wrapped)."""
    with log.open("wb") as out, engine_process(config, output=out) as process:
        yield process
