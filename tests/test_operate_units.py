"""The operations surface in-process: metrics behind the token when asked, sessions that cannot be
forged, loopback detection, and the JSON log formatter."""

from __future__ import annotations

import json
import logging

import httpx
import pytest

from provisioner.engine.cli.logs import JsonFormatter
from provisioner.engine.config import Config
from provisioner.engine.runtime.http.app import http_app
from provisioner.engine.runtime.http.auth import SESSION_COOKIE, Auth, check_listen, is_loopback
from provisioner.engine.runtime.http.console import templates
from provisioner.engine.runtime.replica import Replica

pytestmark = pytest.mark.fast


def config(tmp_path, **api) -> Config:  # type: ignore[no-untyped-def]
    return Config.model_validate({"store": {"url": f"sqlite:///{tmp_path / 'ops.db'}"}, "api": api})


async def test_metrics_need_the_token_when_metrics_auth_is_on(tmp_path):
    replica = Replica(config(tmp_path, token="s3cret", metrics_auth=True))
    transport = httpx.ASGITransport(app=http_app(replica, replica.metrics))
    async with httpx.AsyncClient(transport=transport, base_url="http://engine") as client:
        assert (await client.get("/metrics")).status_code == 401
        scraped = await client.get("/metrics", headers={"Authorization": "Bearer s3cret"})
        assert scraped.status_code == 200 and "provisioner_outbox_pending 0.0" in scraped.text
        assert (await client.get("/healthz")).status_code == 200  # health never needs a token


async def test_an_agents_token_scrapes_no_metrics(tmp_path):
    agent = {"name": "bot", "token": "agent-token-0123456789", "roles": ["agent"]}
    replica = Replica(config(tmp_path, token="s3cret", metrics_auth=True, tokens=[agent]))
    transport = httpx.ASGITransport(app=http_app(replica, replica.metrics))
    async with httpx.AsyncClient(transport=transport, base_url="http://engine") as client:
        refused = await client.get("/metrics", headers={"Authorization": "Bearer agent-token-0123456789"})
        assert refused.status_code == 401  # least privilege: an agent's token is for /mcp


async def test_a_forged_or_foreign_session_is_no_session(tmp_path):
    replica = Replica(config(tmp_path, token="s3cret"))
    other = Auth(config(tmp_path, token="another-token"))
    transport = httpx.ASGITransport(app=http_app(replica, replica.metrics))
    async with httpx.AsyncClient(transport=transport, base_url="http://engine") as client:
        for cookie in ("", "1.2.3", other.new_session(), Auth(config(tmp_path, token="s3cret")).new_session() + "0"):
            client.cookies.set(SESSION_COOKIE, cookie)
            assert (await client.get("/")).status_code == 303, cookie
        # Signed with the right key but never issued (not in the store): no session either.
        client.cookies.set(SESSION_COOKIE, Auth(config(tmp_path, token="s3cret")).new_session())
        assert (await client.get("/")).status_code == 303
        client.cookies.set(SESSION_COOKIE, Auth(config(tmp_path, token="s3cret"), replica.store.sessions).new_session())
        assert (await client.get("/")).status_code == 200


def test_listening_beyond_loopback_needs_a_token(tmp_path):
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("10.0.0.5") and not is_loopback("")
    public = Config.model_validate({"engine": {"listen": "0.0.0.0:8088"}})
    with pytest.raises(ValueError, match=r"api\.token is not set"):
        check_listen(public)
    secured = Config.model_validate({"engine": {"listen": "0.0.0.0:8088"}, "api": {"token": "x"}})
    assert check_listen(secured) == ("0.0.0.0", 8088)


def test_json_log_lines_carry_the_ids_passed_as_extra():
    record = logging.LogRecord("provisioner.engine", logging.ERROR, __file__, 1, "event %s failed", ("abc",), None)
    record.event_id, record.worker_id = "abc", "hr:1"
    line = json.loads(JsonFormatter().format(record))
    assert line["message"] == "event abc failed" and line["level"] == "error"
    assert line["event_id"] == "abc" and line["worker_id"] == "hr:1" and "target" not in line
    assert line["time"].endswith("+00:00")


def test_the_console_reconcile_page_says_what_was_not_reconciled_or_compared():
    """A report with nothing needing attention but a target not listed and a group not compared
    must not read as 'every account is as it should be' and nothing else."""
    report = {
        "at": "2026-12-06T10:00:00+00:00",
        "summary": {"app": {"confirmed": 2}},
        "items": [],
        "unlisted": {"crm": "its accounts could not be listed: the answer is larger than 1024 bytes"},
        "unread_groups": {"app": ["all-staff"]},
        "duplicate_groups": [{"target": "app", "name": "eng", "ids": ["g1", "g2"]}],
    }
    page = templates().get_template("reconcile.html").render(report=report, session=None, request=None)
    assert "Not reconciled: crm" in page and "larger than 1024 bytes" in page
    assert "Not compared: app" in page and "all-staff" in page
    assert "Duplicate groups: app eng" in page
