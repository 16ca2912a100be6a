"""A real `provisioner run` under hostile requests (issue 24): bodies are bounded and read only
after authentication, the API and OpenAPI need the token first, the console is not frameable nor
cached, logout and `sessions revoke` end a session server-side, and the store file is private."""

from __future__ import annotations

import json
import re
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from provisioner.engine.cli.main import app as cli_app
from tests.ops_harness import TOKEN, Engine, engine, refusing_scim, write_config

MB = 1 << 20


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    tmp = tmp_path_factory.mktemp("hostile")
    with refusing_scim() as scim:
        config = write_config(tmp, scim.url)
        data = json.loads(config.read_text())
        # A webhook source (Greenhouse signs in a header); its API is never reached in these tests.
        data["sources"].append(
            {
                "name": "greenhouse",
                "type": "greenhouse",
                "base_url": "http://127.0.0.1:9",
                "version": "v1",
                "api_key": "k",
                "webhook_secret": "s3cret",
                "poll_interval": "1h",
                "max_attempts": 1,
            }
        )
        config.write_text(json.dumps(data))
        with engine(tmp, config) as eng:
            yield eng


def peak_rss(pid: int) -> int:
    """The process's peak resident set (VmHWM), in bytes."""
    status = Path(f"/proc/{pid}/status").read_text()
    found = re.search(r"VmHWM:\s+(\d+) kB", status)
    assert found
    return int(found.group(1)) * 1024


def stream(megabytes: int) -> Iterator[bytes]:
    chunk = b"x" * MB
    for _ in range(megabytes):
        yield chunk


def post_stream(url: str, megabytes: int, headers: dict[str, str] | None = None) -> int | None:
    """POST `megabytes` streamed from a generator; the status, or None when the engine closed the
    connection before the upload ended (it refused without reading)."""
    try:
        return httpx.post(url, content=stream(megabytes), headers=headers or {}, timeout=60).status_code
    except httpx.TransportError:
        return None


def test_250_mb_webhook_bodies_leave_the_engine_under_its_normal_peak(running: Engine):
    before = peak_rss(running.process.pid)
    url = f"{running.url}/webhooks/greenhouse"
    # Unsigned: refused on the headers. Signed-looking: read up to the limit, then refused.
    assert post_stream(url, 250) in (401, None)
    assert post_stream(url, 250, {"Signature": "sha256 00"}) in (413, None)
    assert httpx.post(url, content=b"x" * (MB + 1), headers={"Signature": "sha256 00"}).status_code == 413
    assert peak_rss(running.process.pid) - before < 32 * MB
    assert httpx.get(f"{running.url}/healthz").status_code == 200


def test_the_api_checks_the_token_before_the_body(running: Engine):
    retry = f"{running.url}/api/v1/failures/retry"
    assert post_stream(retry, 50, {"Content-Type": "application/json"}) in (401, None)
    big = httpx.post(retry, content=b"[" + b" " * (2 * MB) + b"]", headers={"Content-Type": "application/json"})
    assert big.status_code == 401  # no token: refused before the body, not 422 after parsing it
    api = running.api()
    assert api.post("/failures/retry", content=b"{" + b" " * (2 * MB) + b"}").status_code == 413
    for bad in (b"{not json", b"[" * 50_000 + b"]" * 50_000):
        answer = api.post("/failures/retry", content=bad, headers={"Content-Type": "application/json"})
        assert answer.status_code == 400, answer.status_code  # never a 500, nor a 422 for unparsable bytes
    assert httpx.get(f"{running.url}/api/v1/openapi.json").status_code == 401
    assert api.get("/openapi.json").status_code == 200
    assert "Traceback" not in running.log_file.read_text()


@contextmanager
def login(url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=url) as browser:
        assert browser.post("/login", data={"token": TOKEN}).status_code == 303
        yield browser


def test_console_headers_and_a_bounded_login_form(running: Engine):
    page = httpx.get(f"{running.url}/login")
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    assert page.headers["cache-control"] == "no-store" and page.headers["x-frame-options"] == "DENY"
    assert post_stream(f"{running.url}/login", 20, {"Content-Type": "application/x-www-form-urlencoded"}) in (413, None)


def test_logout_and_revoke_end_a_session_on_the_server(running: Engine):
    with login(running.url) as browser:
        cookie = browser.cookies["provisioner_session"]
        page = browser.get("/workers/hr:1001")
        assert page.status_code == 200
        csrf = re.search(r'name="csrf" value="([0-9a-f]+)"', page.text)
        assert csrf
        assert browser.post("/logout", data={"csrf": csrf.group(1)}).status_code == 303
    with httpx.Client(base_url=running.url, cookies={"provisioner_session": cookie}) as stolen:
        assert stolen.get("/").status_code == 303  # the copied cookie no longer works
    with login(running.url) as browser:
        assert browser.get("/").status_code == 200
        cli = CliRunner()
        listed = cli.invoke(cli_app, ["sessions", "list", "-c", str(running.config)])
        assert listed.exit_code == 0 and "127.0.0.1" in listed.output
        revoked = cli.invoke(cli_app, ["sessions", "revoke", "*", "-c", str(running.config)])
        assert revoked.exit_code == 0 and "revoked" in revoked.output
        assert browser.get("/").status_code == 303


def test_the_store_file_is_private(running: Engine):
    database = Path(running.store_url.removeprefix("sqlite:///"))
    for path in (database, Path(f"{database}-wal")):
        if path.exists():
            assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    assert database.exists()
