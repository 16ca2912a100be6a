"""django-scim2 or django-scim2-server (PyPI) in the tiny Django project of tests/djscim, as a child process on a free
loopback port, with its own SQLite file and a bearer token."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from provisioner.engine.kit.servers import free_port

ROOT = Path(__file__).resolve().parent.parent


def djscim_available() -> bool:
    try:
        import django  # noqa: F401
        import django_scim  # noqa: F401
        import django_scim2_server  # noqa: F401
    except ImportError:
        return False
    return True


@contextmanager
def djscim_server(api: str = "scim") -> Iterator[tuple[str, str]]:
    """(base URL of its SCIM API, a bearer token it accepts): django-scim2's for "scim",
    django-scim2-server's for "scim2s". Each server process has its own database."""
    port, token = free_port(), secrets.token_urlsafe(16)
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "DJSCIM_DB": f"{tmp}/db.sqlite", "DJSCIM_PORT": str(port), "DJSCIM_TOKEN": token}
        process = subprocess.Popen(
            [sys.executable, "-m", "tests.djscim.serve"], cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True
        )
        try:
            assert process.stdout is not None
            line = process.stdout.readline()  # the server says so once it accepts, or exits
            if "listening" not in line:
                raise RuntimeError(f"django-scim2 did not start (exit {process.wait(timeout=10)})")
            yield f"http://127.0.0.1:{port}/{api}/v2", token
        finally:
            process.terminate()
            process.wait(timeout=10)
