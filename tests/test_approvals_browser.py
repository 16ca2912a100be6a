"""Approvals in a real `provisioner run` and a real headless browser (Debian's chromium): a payroll
grant waits until the person's manager approves it on the console's queue page, is written in the
next cycle, and the log names the approver; a request nobody answers expires as denied on the
engine's own schedule. Screenshots under the test's tmp dir."""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webdriver import WebDriver

from provisioner.engine.kit.servers import free_port, scim_app, serve_wsgi
from tests.conftest import scim_users
from tests.flow import groups_of
from tests.ops_harness import TOKEN, engine
from tests.processes import wait_for
from tests.test_console_browser import browser, pytestmark, shoot

__all__ = ["browser", "pytestmark"]  # the fixture and the skip when chromium is missing

MIA = "mia-token-0123456789"
PEOPLE = [
    {"remote_id": "1", "first_name": "Ada", "last_name": "Byron", "department": "Finance", "manager_id": "hr:9"},
    {"remote_id": "3", "first_name": "Cy", "last_name": "Audit", "department": "Audit", "manager_id": "hr:9"},
    {"remote_id": "9", "first_name": "Mia", "last_name": "Chief", "department": "Board"},
]


def write_config(tmp: Path, app_url: str, payroll_url: str) -> Path:
    people = tmp / "people.json"
    people.write_text(json.dumps([{**p, "work_email": f"{p['first_name'].lower()}@example.com"} for p in PEOPLE]))
    gate = {"by": "manager", "expires_after": "7d", "reason_required": True}
    config = tmp / "provisioner.yaml"
    config.write_text(
        json.dumps(
            {
                "store": {"url": f"sqlite:///{tmp / 'engine.db'}"},
                "engine": {"listen": f"127.0.0.1:{free_port()}", "deferred_interval": "1s"},
                "api": {"token": TOKEN, "tokens": [{"name": "mia", "token": MIA, "person": "hr:9"}]},
                "sources": [{"name": "hr", "type": "file", "path": str(people), "poll_interval": "1h"}],
                "targets": [
                    {"name": "app", "type": "scim", "base_url": app_url, "bulk": False},
                    {"name": "payroll", "type": "scim", "base_url": payroll_url, "bulk": False},
                ],
                "policies": [
                    {"name": "staff", "grant": [{"target": "app"}]},
                    {
                        "name": "finance-payroll",
                        "when": "worker.department == 'Finance'",
                        "grant": [{"target": "payroll", "groups": ["payroll-users"], "approval": gate}],
                    },
                    {
                        "name": "audit-payroll",
                        "when": "worker.department == 'Audit'",
                        "grant": [
                            {
                                "target": "payroll",
                                "groups": ["payroll-auditors"],
                                "approval": {"by": "group:controllers", "expires_after": "3s"},
                            }
                        ],
                    },
                ],
            }
        )
    )
    return config


def test_a_payroll_grant_is_approved_in_the_console(tmp_path: Path, browser: WebDriver):
    shots = tmp_path / "screenshots"
    with serve_wsgi(scim_app()) as app, serve_wsgi(scim_app()) as payroll:
        pay = httpx.Client(base_url=payroll.url)
        with engine(tmp_path, write_config(tmp_path, app.url, payroll.url)) as eng:
            api, as_mia = eng.api(), eng.api(MIA)
            wait_for(lambda: len(scim_users(httpx.Client(base_url=app.url))) == 3, 60, "everyone's app account")
            pending = wait_for(lambda: as_mia.get("/approvals").json(), 30, "the payroll requests")
            [ada] = [r for r in pending if r["worker_id"] == "hr:1"]
            assert ada["rule"] == "manager" and ada["groups"] == ["payroll-users"]
            # another poll plans everyone again: the grant still waits, nothing is in payroll
            assert api.post("/sources/hr/poll").status_code == 200
            wait_for(lambda: api.get("/status").json()["unapplied_events"] == 0, 30, "outbox drained")
            assert scim_users(pay) == []

            browser.get(eng.url + "/approvals")
            assert "/login" in browser.current_url
            browser.find_element(By.ID, "token").send_keys(MIA, Keys.ENTER)
            wait_for(lambda: browser.find_elements(By.ID, "approvals"), 10, "the approvals queue")
            assert browser.find_element(By.ID, "approver").text == "mia"
            row = browser.find_element(By.ID, f"request-{ada['id']}")
            assert "hr:1" in row.text and "payroll-users" in row.text and "pending" in row.text
            shoot(browser, shots, "01-queue")
            browser.get(eng.url + "/")  # an approver's login is for the queue only
            assert browser.current_url.endswith("/approvals")

            row = browser.find_element(By.ID, f"request-{ada['id']}")
            row.find_element(By.ID, f"reason-{ada['id']}").send_keys("joins the payroll team")
            clicked = time.monotonic()
            row.find_element(By.NAME, "approve").click()
            notice = browser.find_element(By.CSS_SELECTOR, ".notice").text
            assert notice.startswith(f"{ada['id']} approved"), notice
            shoot(browser, shots, "02-approved")

            def granted() -> bool:
                users = scim_users(pay)
                return len(users) == 1 and groups_of(pay, users[0]["id"]) == {"payroll-users"}

            wait_for(granted, 30, "the payroll account and group after approval")
            applied = time.monotonic() - clicked
            assert scim_users(pay)[0]["externalId"] == "hr:1"
            log = wait_for(
                lambda: (
                    (entries := api.get("/log", params={"worker": "hr:1", "target": "payroll"}).json())[-1]["action"]
                    == "add_groups"
                    and entries
                ),
                30,
                "the grant recorded",
            )
            decision = next(e for e in log if e["action"] == "approval_approved")
            assert decision["reason"] == "approved by mia: joins the payroll team"
            assert decision["attributes"]["by"] == "mia"
            assert [e["action"] for e in log][-2:] == ["create", "add_groups"]
            print(f"approval to payroll account: {applied:.2f}s")

            # nobody is in group controllers: the auditor's request expires on the engine's schedule
            expired = wait_for(lambda: as_mia.get("/approvals", params={"state": "expired"}).json(), 30, "expiry")
            assert [r["worker_id"] for r in expired] == ["hr:3"] and expired[0]["decided_by"] == "expiry"
            assert any(e["action"] == "approval_expired" for e in api.get("/log", params={"worker": "hr:3"}).json())
            browser.get(eng.url + "/approvals?state=expired")
            assert "hr:3" in browser.find_element(By.ID, "approvals").text
            shoot(browser, shots, "03-expired")
            assert [u["externalId"] for u in scim_users(pay)] == ["hr:1"]
