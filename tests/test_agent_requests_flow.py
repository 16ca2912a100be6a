"""An access request through the whole flow in one process (in-memory bus, SQLite store, two
scim2-server apps in threads): an agent asks that a person get payroll, which no policy gives; it
is listed the same by the API, the CLI and the console with who asked and what; the person it is
about and other approvers are refused; the manager approves and the account reaches the app in
the next cycle, the log naming who asked and who approved; reconcile counts it as desired; the
person leaves and loses it like any access."""

from __future__ import annotations

import json
import re
from pathlib import Path

import httpx
from typer.testing import CliRunner

from provisioner.engine.cli.main import app as cli
from provisioner.engine.kit.servers import scim_app, serve_wsgi
from provisioner.engine.runtime.agent_requests import request_access
from provisioner.engine.runtime.approvals import approver_of, decide
from provisioner.engine.runtime.http.app import http_app
from provisioner.engine.runtime.usecases.fire_due import expire_approvals
from provisioner.reconcile.classify import SETTLED
from provisioner.reconcile.run import reconcile
from tests.conftest import scim_users
from tests.flow import People, engine, groups_of, hire, sync, until, user

MIA, BOB, ADA = "mia-token-0123456789", "bob-token-0123456789", "ada-token-0123456789"


def settings(scim_url: str, payroll_url: str) -> dict:
    return {
        "targets": [
            {"name": "app", "type": "scim", "base_url": scim_url, "max_attempts": 2},
            {
                "name": "payroll",
                "type": "scim",
                "base_url": payroll_url,
                "max_attempts": 2,
                "manage_groups": ["payroll-*"],
            },
        ],
        "api": {
            "tokens": [
                {"name": "mia", "token": MIA, "person": "hr:9", "roles": ["approver"]},
                {"name": "bob", "token": BOB, "person": "hr:2", "roles": ["approver", "operator"]},
                {"name": "ada", "token": ADA, "person": "hr:1", "roles": ["approver"]},
            ],
        },
    }


async def test_requested_access_is_approved_written_reconciled_and_lost_on_leaving(tmp_path, scim_server):
    people = People(tmp_path / "people.json")
    people.write(hire(1, manager_id="hr:9"), hire(2), hire(9))
    with serve_wsgi(scim_app()) as payroll:
        await _flow(tmp_path, scim_server.url, payroll.url, people)


async def _flow(tmp_path: Path, scim_url: str, payroll_url: str, people: People) -> None:
    pay = httpx.Client(base_url=payroll_url)
    async with engine(tmp_path, scim_url, people, **settings(scim_url, payroll_url)) as runtime:
        await sync(runtime)
        assert scim_users(pay) == []  # no policy gives payroll
        receipt = request_access(
            runtime.store, runtime.config, "hr:1", "payroll", "claude", ["payroll-users"], "runs month end"
        )
        assert receipt.approvers == "hr:9, manager of hr:1"
        await sync(runtime)  # planned again meanwhile: the request stays pending, nothing is written
        assert runtime.store.approvals.get(receipt.id).state.value == "pending" and scim_users(pay) == []

        web = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=http_app(runtime, runtime.metrics)), base_url="http://e"
        )
        as_mia = {"Authorization": f"Bearer {MIA}"}
        listed = (await web.get("/api/v1/approvals", headers=as_mia)).json()
        assert [(r["id"], r["kind"], r["requested_by"]) for r in listed] == [(receipt.id, "access", "claude")]
        config = tmp_path / "c.json"
        source = {"name": "hr", "type": "file", "path": str(people.path)}
        config.write_text(
            json.dumps(
                {"store": {"url": runtime.config.store.url}, "sources": [source], **settings("http://a", "http://p")}
            )
        )
        out = CliRunner().invoke(cli, ["approvals", "list", "-c", str(config), "--json"])
        assert out.exit_code == 0, out.output
        assert json.loads(out.stdout) == listed
        table = " ".join(
            CliRunner().invoke(cli, ["approvals", "list", "-c", str(config)], env={"COLUMNS": "250"}).stdout.split()
        )
        assert "access" in table and "claude" in table and "payroll-users" in table

        for token, why in ((ADA, "their own access"), (BOB, "manager, hr:9")):
            refused = await web.post(
                f"/api/v1/approvals/{receipt.id}/approve", headers={"Authorization": f"Bearer {token}"}
            )
            assert refused.status_code == 403 and why in refused.json()["detail"]

        await web.aclose()
        browser = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=http_app(runtime, runtime.metrics)), base_url="http://e"
        )
        async with browser as web:  # the console's queue shows the kind, who asked and what, and decides
            assert (await web.post("/login", data={"token": MIA})).status_code == 303
            page = await web.get("/approvals")
            row = re.search(rf'<tr id="request-{receipt.id}">.*?</tr>', page.text, re.DOTALL)
            assert row and "access" in row.group(0) and "claude" in row.group(0) and "runs month end" in row.group(0)
            csrf = re.search(r'name="csrf" value="([0-9a-f]+)"', page.text)
            assert csrf
            decided = await web.post(
                f"/approvals/{receipt.id}/approve", data={"csrf": csrf.group(1), "reason": "ok for Q4"}
            )
            assert decided.status_code == 303

        await runtime.wait_idle(timeout=30)
        [account] = await until(lambda: scim_users(pay), "the payroll account")
        assert account["externalId"] == "hr:1" and groups_of(pay, account["id"]) == {"payroll-users"}
        log = runtime.store.log.recent("hr:1")
        created = next(e for e in log if e.target == "payroll" and e.action == "create")
        assert "access requested by claude, approved by mia" in created.reason
        assert created.policy == f"access:{receipt.id}"
        asked = next(e for e in log if e.action == "approval_requested")
        assert asked.attributes["requested_by"] == "claude" and "runs month end" in asked.reason
        await sync(runtime)
        assert [e.action for e in runtime.store.log.recent("hr:1") if e.target == "payroll"][-1] == "add_groups"

        # explain says why hr:1 has payroll (the API, the CLI and the MCP tool share it)
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=http_app(runtime, runtime.metrics)), base_url="http://e"
        ) as api:
            explained = (await api.get("/api/v1/workers/hr:1", headers={"Authorization": f"Bearer {BOB}"})).json()
        payroll_why = explained["targets"]["payroll"]
        assert payroll_why["in_scope"] and payroll_why["groups"] == ["payroll-users"]
        assert payroll_why["why"].startswith("access requested by claude, approved by mia")

        # reconcile counts it as desired: no drift, nothing to remove
        items = [i for i in (await reconcile(runtime.parts)).items if i.worker_id == "hr:1"]
        assert {i.target for i in items} == {"app", "payroll"}
        assert all(i.situation in SETTLED for i in items), [(i.target, i.situation) for i in items]

        # the person leaves: payroll goes like any access, and the grant with it
        people.write(hire(1, manager_id="hr:9", status="terminated", termination_date="2026-01-31"), hire(2), hire(9))
        await sync(runtime)
        assert user(pay, "hr:1")["active"] is False and groups_of(pay, account["id"]) == set()
        assert runtime.store.approvals.get(receipt.id).state.value == "void"
    assert runtime.totals.failed == 0


async def test_denied_or_expired_access_leaves_nothing_and_approved_access_is_desired(tmp_path, scim_server, store_url):
    people = People(tmp_path / "people.json")
    people.write(hire(1, manager_id="hr:9"), hire(9))
    extra = {**settings(scim_server.url, "http://unused"), "store": {"url": store_url}}
    with serve_wsgi(scim_app()) as payroll:
        extra["targets"][1]["base_url"] = payroll.url
        pay = httpx.Client(base_url=payroll.url)
        async with engine(tmp_path, scim_server.url, people, **extra) as runtime:
            await sync(runtime)
            mia = approver_of(runtime.config, runtime.config.api.tokens[0])
            assert mia is not None
            denied = request_access(runtime.store, runtime.config, "hr:1", "payroll", "claude", ["payroll-users"])
            decide(runtime.store, denied.id, mia, approve=False)
            late = request_access(runtime.store, runtime.config, "hr:1", "payroll", "claude")
            with runtime.store.unit() as s:
                expire_approvals(runtime.store, s, late.expires_at)
            await sync(runtime)
            await runtime.wait_idle(timeout=30)
            assert scim_users(pay) == [] and runtime.store.approvals.approved_keys(["hr:1"]) == {}
            assert [i for i in (await reconcile(runtime.parts)).items if i.target == "payroll"] == []

            approved = request_access(runtime.store, runtime.config, "hr:1", "payroll", "claude", ["payroll-users"])
            decide(runtime.store, approved.id, mia, approve=True)
            await runtime.wait_idle(timeout=30)
            [account] = await until(lambda: scim_users(pay), "the payroll account")
            await sync(runtime)
            assert groups_of(pay, account["id"]) == {"payroll-users"}
            items = [i for i in (await reconcile(runtime.parts)).items if i.worker_id == "hr:1"]
            assert {i.target for i in items} == {"app", "payroll"}
            assert all(i.situation in SETTLED for i in items), [(i.target, i.situation) for i in items]
