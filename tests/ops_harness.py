"""A real `provisioner run` (or `serve`) process for the operations tests: a CSV source of three
people, a SCIM app that refuses one of them, the API token set, JSON logs to a file."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from provisioner.engine.kit.servers import BackgroundServer, free_port, scim_app, serve_wsgi
from tests.processes import answers, wait_for

TOKEN = "test-token-0123456789"
REFUSED = "refused.person@example.com"
PEOPLE = [
    ("1001", "Ada", "Lovelace", "ada.lovelace@example.com", "Engineering"),
    ("1002", "Grace", "Hopper", "grace.hopper@example.com", "Engineering"),
    ("1003", "Refused", "Person", REFUSED, "Sales"),
]


def refusing(app: Any, needle: bytes) -> Any:
    """The SCIM app, but a create naming `needle` gets a SCIM 400: one person the target refuses."""

    def shim(environ: dict[str, Any], start_response: Any) -> Any:
        if environ["REQUEST_METHOD"] == "POST" and environ.get("PATH_INFO", "").endswith("/Users"):
            body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
            if needle in body:
                error = {
                    "schemas": ["urn:ietf:params:scim:api:messages:2.0:Error"],
                    "status": "400",
                    "scimType": "invalidValue",
                    "detail": "this userName is not allowed here",
                }
                start_response("400 Bad Request", [("Content-Type", "application/scim+json")])
                return [json.dumps(error).encode()]
            environ["wsgi.input"] = io.BytesIO(body)
        return app(environ, start_response)

    return shim


@dataclass
class Engine:
    url: str
    config: Path
    store_url: str
    log_file: Path
    process: subprocess.Popen[bytes]

    def api(self, token: str | None = TOKEN) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=f"{self.url}/api/v1", headers=headers, timeout=30)

    def json_logs(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.log_file.read_text().splitlines() if line.strip()]


def write_config(tmp: Path, scim_url: str, *, token: str | None = TOKEN, listen: str | None = None) -> Path:
    csv = tmp / "workers.csv"
    rows = ["remote_id,first_name,last_name,work_email,department,status,employment_type"]
    rows += [f"{rid},{first},{last},{email},{dept},active,full_time" for rid, first, last, email, dept in PEOPLE]
    csv.write_text("\n".join(rows) + "\n")
    config = tmp / "provisioner.yaml"
    config.write_text(
        json.dumps(
            {
                "store": {"url": f"sqlite:///{tmp / 'engine.db'}"},
                "engine": {"listen": listen or f"127.0.0.1:{free_port()}", "deferred_interval": "1h"},
                "api": {"token": token} if token else {},
                "sources": [{"name": "hr", "type": "file", "path": str(csv), "poll_interval": "1h"}],
                "targets": [{"name": "app", "type": "scim", "base_url": scim_url, "max_attempts": 1, "bulk": False}],
                "policies": [{"name": "everyone", "when": "true", "grant": [{"target": "app"}]}],
            }
        )
    )
    return config


@contextmanager
def refusing_scim() -> Iterator[BackgroundServer]:
    with serve_wsgi(refusing(scim_app(), REFUSED.encode())) as server:
        yield server


@contextmanager
def engine(tmp: Path, config: Path, command: str = "run") -> Iterator[Engine]:
    listen = json.loads(config.read_text())["engine"]["listen"]
    log_file = tmp / f"{command}.log"
    with log_file.open("wb") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "provisioner.engine.cli", command, "-c", str(config), "--log-format", "json"],
            stdout=subprocess.DEVNULL,
            stderr=sink,
            start_new_session=True,
            env={**os.environ, "PROVISIONER_LOG_FORMAT": "json"},
        )
    running = Engine(f"http://{listen}", config, f"sqlite:///{tmp / 'engine.db'}", log_file, process)
    try:
        wait_for(lambda: answers(f"{running.url}/healthz") or process.poll() is not None, 60, "engine up")
        assert process.poll() is None, log_file.read_text()
        yield running
    finally:
        with suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
