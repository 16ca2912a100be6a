"""Run the SCIMMY glue server (tests/scimmy/server.js) as a child process for a test.

Self-contained on purpose (stdlib only): the project's own packages are being moved around,
and this helper must keep working whatever they are called. Install the server's packages
once with `npm ci --prefix tests/scimmy`.
"""

from __future__ import annotations

import os
import selectors
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

SCIMMY_DIR = Path(__file__).resolve().parent / "scimmy"
SERVER_JS = SCIMMY_DIR / "server.js"
START_TIMEOUT = 20.0
STOP_TIMEOUT = 5.0
PORT_ATTEMPTS = 3


def scimmy_available() -> bool:
    """Whether node is installed and the server's packages have been installed."""
    return shutil.which("node") is not None and (SCIMMY_DIR / "node_modules").is_dir()


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class _PortTaken(RuntimeError):
    """Another process took the port between _free_port() and node binding it."""


def _wait_until_listening(proc: subprocess.Popen[bytes], port: int, stderr_file: IO[bytes]) -> None:
    """Block until the server announces itself; fail as soon as it exits, or after START_TIMEOUT.

    Only the announcement counts, not a port that accepts: in the race where someone else
    grabbed the port, that someone would accept too, and the tests would talk to a stranger.
    """
    deadline = time.monotonic() + START_TIMEOUT
    assert proc.stdout is not None
    buffered = b""
    with selectors.DefaultSelector() as selector:
        selector.register(proc.stdout, selectors.EVENT_READ)
        # No polling: the pipe becomes readable on the line and at end-of-file alike.
        while (remaining := deadline - time.monotonic()) > 0:
            if not selector.select(timeout=remaining):
                continue
            chunk = os.read(proc.stdout.fileno(), 4096)
            buffered += chunk
            if f"listening {port}\n".encode() in buffered:
                return
            if not chunk:  # end-of-file: the process is exiting
                try:
                    proc.wait(timeout=STOP_TIMEOUT)
                except subprocess.TimeoutExpired:
                    pass
                stderr = _read(stderr_file)
                error = _PortTaken if "EADDRINUSE" in stderr else RuntimeError
                raise error(f"SCIMMY server exited (code {proc.returncode}) before listening on port {port}:\n{stderr}")
    raise RuntimeError(
        f"SCIMMY server did not listen on port {port} within {START_TIMEOUT:.0f} s:\n{_read(stderr_file)}"
    )


def _read(stderr_file: IO[bytes]) -> str:
    stderr_file.flush()
    stderr_file.seek(0)
    return stderr_file.read().decode(errors="replace").strip() or "(no stderr)"


def _stop(proc: subprocess.Popen[bytes]) -> None:
    for stream in (proc.stdin, proc.stdout):
        if stream is not None:
            try:
                stream.close()
            except OSError:
                pass
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextmanager
def scimmy_server_process(token: str = "scimmy-token") -> Iterator[str]:
    """Start a fresh SCIMMY server on a free loopback port and yield its base URL.

    Its stdin is a pipe held by this process: if the test run dies without reaching the
    cleanup below, the server sees end-of-file and exits by itself instead of lingering.
    """
    env = {**os.environ, "SCIMMY_TOKEN": token}
    # stderr goes to a file, not a pipe: nobody drains it while tests run, and a full pipe
    # would block node's synchronous writes and freeze the server mid-request.
    with tempfile.TemporaryFile() as stderr_file:
        for attempt in range(1, PORT_ATTEMPTS + 1):
            port = _free_port()
            stderr_file.seek(0)
            stderr_file.truncate()
            proc = subprocess.Popen(
                ["node", str(SERVER_JS), str(port)],
                cwd=SCIMMY_DIR,
                env=env,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=stderr_file,
            )
            try:
                _wait_until_listening(proc, port, stderr_file)
                break
            except _PortTaken:
                _stop(proc)
                if attempt == PORT_ATTEMPTS:
                    raise
            except BaseException:
                _stop(proc)
                raise
        try:
            yield f"http://127.0.0.1:{port}"
        finally:
            _stop(proc)
