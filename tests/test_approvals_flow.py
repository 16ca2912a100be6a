"""Approvals through the whole flow in one process (in-memory bus, SQLite store, two scim2-server
apps in threads): a payroll grant waits while the person's other access flows, is written in the
cycle after a manager approves it (the log names them), expires as denied when nobody answers, is
void when the person moves away, and asks again when they come back. The API and the CLI answer the
same."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from provisioner.engine.cli.main import app as cli
from provisioner.engine.contracts.approvals import Approver
from provisioner.engine.kit.servers import BackgroundServer, scim_app, serve_wsgi
from provisioner.engine.runtime import approvals
from provisioner.engine.runtime.http.app import http_app
from provisioner.reconcile.run import reconcile
from tests.conftest import scim_users
from tests.flow import People, engine, groups_of, hire, sync, until, user

SHARED, MIA, BOB = "shared-token-0123456789", "mia-token-0123456789", "bob-token-0123456789"
POLICIES = [
    {"name": "staff", "grant": [{"target": "app", "groups": ["staff"]}]},
    {
        "name": "finance-payroll",
        "when": "worker.department == 'Finance'",
        "grant": [
            {"target": "payroll", "groups": ["payroll-users"], "approval": {"by": "manager", "expires_after": "3d"}}
        ],
    },
]


@pytest.fixture
def payroll() -> Iterator[BackgroundServer]:
    with serve_wsgi(scim_app()) as server:
        yield server


def settings(scim_url: str, payroll_url: str) -> dict:
    return {
        "policies": POLICIES,
        "targets": [
            {"name": "app", "type": "scim", "base_url": scim_url, "max_attempts": 2},
            {"name": "payroll", "type": "scim", "base_url": payroll_url, "max_attempts": 2},
        ],
        "api": {
            "token": SHARED,
            "tokens": [
                {"name": "mia", "token": MIA, "person": "hr:9", "roles": ["approver"]},
                {"name": "bob", "token": BOB, "person": "hr:2", "roles": ["approver", "operator"]},
            ],
        },
    }


def finance(i: int, **kw) -> dict:
    return hire(i, department="Finance", manager_id="hr:9", **kw)


async def test_a_payroll_grant_waits_for_the_manager_then_flows(tmp_path, scim_server, scim, payroll):
    people = People(tmp_path / "people.json")
    people.write(finance(1), hire(2), hire(9, department="Board"))
    pay = httpx.Client(base_url=payroll.url)
    async with engine(tmp_path, scim_server.url, people, **settings(scim_server.url, payroll.url)) as runtime:
        await sync(runtime)
        # the person's other access flows; payroll waits
        assert groups_of(scim, user(scim, "hr:1")["id"]) == {"staff"}
        assert scim_users(pay) == []
        [request] = runtime.store.approvals.list("pending")
        assert (request.worker_id, request.target, request.groups, request.account) == (
            "hr:1",
            "payroll",
            ["payroll-users"],
            True,
        )
        # planned again (a re-poll with a change elsewhere): still one request, still nothing written
        people.write(finance(1, title="Clerk"), hire(2), hire(9, department="Board"))
        await sync(runtime)
        assert len(runtime.store.approvals.list()) == 1 and scim_users(pay) == []
        config = tmp_path / "c.json"
        source = {"name": "hr", "type": "file", "path": str(people.path)}
        written = {"store": {"url": runtime.config.store.url}, "sources": [source]}
        config.write_text(json.dumps({**written, **settings(scim_server.url, payroll.url)}))
        explained = CliRunner().invoke(cli, ["explain", "-c", str(config), "--worker", "hr:1"])
        said = " ".join(explained.stdout.split())  # rich wraps at the terminal's width
        assert (
            f"waits for approval: account, payroll-users (policy finance-payroll, by manager, request {request.id}"
            in said
        )
        # the reconciler compares payroll with what may exist now: a grant that waits is not "missing"
        drift = [
            (i.situation.value, i.worker_id) for i in (await reconcile(runtime.parts)).items if i.target == "payroll"
        ]
        assert ("missing", "hr:1") not in drift

        web = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=http_app(runtime, runtime.metrics)), base_url="http://e"
        )
        as_shared = {"Authorization": f"Bearer {SHARED}"}
        as_mia = {"Authorization": f"Bearer {MIA}"}
        listed = (await web.get("/api/v1/approvals", headers=as_mia)).json()
        assert [r["id"] for r in listed] == [request.id]
        # the CLI answers the same JSON
        out = CliRunner().invoke(cli, ["approvals", "list", "-c", str(config), "--json"])
        assert out.exit_code == 0, out.output
        assert json.loads(out.stdout) == listed
        # the shared token names nobody; Bob is not Ada's manager; an approver-only token is no operator
        refused = await web.post(f"/api/v1/approvals/{request.id}/approve", headers=as_shared)
        assert refused.status_code == 403 and "names nobody" in refused.json()["detail"]
        not_bob = await web.post(f"/api/v1/approvals/{request.id}/approve", headers={"Authorization": f"Bearer {BOB}"})
        assert not_bob.status_code == 403 and "manager, hr:9" in not_bob.json()["detail"]
        assert (await web.get("/api/v1/status", headers=as_mia)).status_code == 403
        as_bob = {"Authorization": f"Bearer {BOB}"}
        explained = (await web.get("/api/v1/workers/hr:1", headers=as_bob)).json()["targets"]["payroll"]
        assert [(r["id"], r["state"], r["grant"]) for r in explained["approvals"]] == [
            (request.id, "pending", ["account", "payroll-users"])
        ]
        [waits] = (await web.get("/api/v1/plan", params={"worker": "hr:1"}, headers=as_bob)).json()["actions"]
        assert (waits["action"], waits["target"]) == ("pending_approval", "payroll")
        assert (await web.get("/metrics")).text.count('provisioner_approvals_pending{target="payroll"} 1.0') == 1

        approved = await web.post(
            f"/api/v1/approvals/{request.id}/approve", headers=as_mia, json={"reason": "month end"}
        )
        assert approved.status_code == 200 and approved.json()["decided_by"] == "mia"
        # applied within one cycle: the approval's re-plan goes through the outbox like any change
        await runtime.wait_idle(timeout=30)
        [account] = await until(lambda: scim_users(pay), "the payroll account")
        assert account["externalId"] == "hr:1" and groups_of(pay, account["id"]) == {"payroll-users"}
        log = runtime.store.log.recent("hr:1")
        decision = next(e for e in log if e.action == "approval_approved")
        assert "approved by mia: month end" in decision.reason and decision.attributes["by"] == "mia"
        assert [e.action for e in log if e.target == "payroll"][-2:] == ["create", "add_groups"]
        assert (await web.get("/api/v1/approvals", headers=as_mia)).json() == []
        assert (
            await web.get("/api/v1/plan", params={"worker": "hr:1"}, headers={"Authorization": f"Bearer {BOB}"})
        ).json()["actions"] == []

        # moved out of Finance: payroll access goes at once, the approval is void
        people.write(hire(1, title="Clerk"), hire(2), hire(9, department="Board"))
        await sync(runtime)
        assert user(pay, "hr:1")["active"] is False
        assert runtime.store.approvals.get(request.id).state.value == "void"
        # back in Finance: asks again, writes nothing meanwhile
        people.write(finance(1, title="Clerk"), hire(2), hire(9, department="Board"))
        await sync(runtime)
        [again] = runtime.store.approvals.list("pending")
        assert again.id != request.id and user(pay, "hr:1")["active"] is False

        # nobody answers: expired as denied on the due-work path, reported, nothing written
        await runtime.fire_due(datetime.now(UTC) + timedelta(days=4))
        expired = runtime.store.approvals.get(again.id)
        assert expired.state.value == "expired" and expired.decided_by == "expiry"
        assert runtime.store.log.recent("hr:1")[-1].action == "approval_expired"
        out = CliRunner().invoke(cli, ["approvals", "list", "-c", str(config), "--state", "expired", "--json"])
        assert [r["id"] for r in json.loads(out.stdout)] == [again.id]
        with pytest.raises(approvals.NotDecidable):
            approvals.decide(runtime.store, again.id, Approver(name="mia", person="hr:9"), approve=True)
        await sync(runtime)  # planned again: an expired grant is not asked again while its reason lasts
        assert runtime.store.approvals.list("pending") == [] and user(pay, "hr:1")["active"] is False
    assert runtime.totals.failed == 0


def test_cli_decides_with_a_named_token_only(tmp_path: Path):
    config = tmp_path / "c.json"
    config.write_text(
        json.dumps({"store": {"url": f"sqlite:///{tmp_path / 's.db'}"}, **settings("http://x", "http://y")})
    )
    shared = CliRunner().invoke(
        cli, ["approvals", "approve", "nope", "-c", str(config)], env={"PROVISIONER_TOKEN": SHARED}
    )
    assert shared.exit_code == 2 and "names nobody" in shared.output
    stranger = CliRunner().invoke(
        cli, ["approvals", "approve", "nope", "-c", str(config)], env={"PROVISIONER_TOKEN": "wrong-token-1234567890"}
    )
    assert stranger.exit_code == 2 and "not one of api.tokens" in stranger.output
    bogus = CliRunner().invoke(cli, ["approvals", "list", "-c", str(config), "--state", "bogus"])
    assert bogus.exit_code == 2 and "or all" in bogus.output
    unknown = CliRunner().invoke(
        cli, ["approvals", "approve", "nope", "-c", str(config)], env={"PROVISIONER_TOKEN": MIA}
    )
    assert unknown.exit_code == 2 and "no approval request 'nope'" in unknown.output


async def test_an_approver_only_login_can_log_out_of_the_console(tmp_path, scim_server, payroll):
    """Mia's login may use the approvals queue only; logging out must still end her session
    (a shared machine keeps no 12-hour approver session behind)."""
    people = People(tmp_path / "people.json")
    people.write(hire(9, department="Board"))
    async with engine(tmp_path, scim_server.url, people, **settings(scim_server.url, payroll.url)) as runtime:
        web = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=http_app(runtime, runtime.metrics)), base_url="http://e"
        )
        async with web:
            assert (await web.post("/login", data={"token": MIA})).status_code == 303
            page = await web.get("/approvals")
            csrf = re.search(r'name="csrf" value="([0-9a-f]+)"', page.text)
            assert page.status_code == 200 and csrf
            assert (await web.post("/logout", data={"csrf": csrf.group(1)})).status_code == 303
            assert (await web.get("/approvals")).status_code == 303  # to the login page: the session ended
