"""The MCP surface over both transports, driven by the SDK's client: streamable HTTP under /mcp of a
real `provisioner run` (the API's tokens), and stdio of a real `provisioner mcp` process. The answers
are the CLI's and the API's; a token without the right is refused; an agent's token reads no
personal data; each call is in the provisioning log with the token's name and the tool."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from mcp import Client, StdioServerParameters
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client

from tests.ops_harness import TOKEN, Engine, engine, refusing_scim, write_config
from tests.processes import wait_for

AGENT_TOKEN = "agent-token-0123456789"  # claude: role agent, sees the directory
APPROVER_TOKEN = "approver-token-0123456789"  # ana: an approver, no MCP
OPERATOR_TOKEN = "operator-token-0123456789"  # ops: a named operator, sees all
PERSONAL = "ada.at.home@example.net"
EMPLOYEE_NUMBER = "E-70001"
CLI = [sys.executable, "-m", "provisioner.engine.cli"]


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    tmp = tmp_path_factory.mktemp("mcp")
    with refusing_scim() as scim:
        config = write_config(tmp, scim.url)
        data = json.loads(config.read_text())
        data["api"]["tokens"] = [
            {"name": "claude", "token": AGENT_TOKEN, "roles": ["agent"]},
            {"name": "ana", "token": APPROVER_TOKEN, "person": "hr:1002"},
            {"name": "ops", "token": OPERATOR_TOKEN, "roles": ["operator"]},
        ]
        data["approvals"] = {"requests": {"by": "people:[ana]"}}  # who decides what an agent asks
        config.write_text(json.dumps(data))
        csv = tmp / "workers.csv"
        rows = csv.read_text().splitlines()
        rows[0] += ",personal_email,employee_number"
        rows[1:] = [row + (f",{PERSONAL},{EMPLOYEE_NUMBER}" if row.startswith("1001,") else ",,") for row in rows[1:]]
        csv.write_text("\n".join(rows) + "\n")
        with engine(tmp, config) as eng:
            api = eng.api()
            wait_for(lambda: len(api.get("/log").json()) >= 3, 60, "first sync applied")
            wait_for(lambda: api.get("/status").json()["unapplied_events"] == 0, 30, "outbox drained")
            yield eng


async def over_http(eng: Engine, token: str, tool: str, **arguments: Any) -> Any:
    async with create_mcp_http_client(headers={"Authorization": f"Bearer {token}"}) as http:
        async with Client(streamable_http_client(f"{eng.url}/mcp", http_client=http)) as client:
            return await client.call_tool(tool, arguments)


def stdio(eng: Engine, token: str | None) -> StdioServerParameters:
    env = {"PROVISIONER_MCP_TOKEN": token} if token else {}
    return StdioServerParameters(command=CLI[0], args=[*CLI[1:], "mcp", "-c", str(eng.config)], env=env)


async def test_over_http_explain_is_the_api_answer(running: Engine):
    expected = running.api().get("/workers/hr:1001").json()  # before the call: the call is logged for hr:1001
    answer = await over_http(running, TOKEN, "explain_person", worker_id="hr:1001")
    assert not answer.is_error
    assert answer.structured_content == expected
    assert answer.structured_content["worker"]["personal_email"] == PERSONAL  # the shared token is an operator's


async def test_over_http_a_token_without_the_right_is_refused(running: Engine):
    hello = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
    headers = {"Accept": "application/json, text/event-stream"}
    nobody = httpx.post(f"{running.url}/mcp", json=hello, headers=headers)
    assert nobody.status_code == 401 and nobody.headers["www-authenticate"] == "Bearer"
    wrong = httpx.post(f"{running.url}/mcp", json=hello, headers={**headers, "Authorization": "Bearer nope-nope"})
    assert wrong.status_code == 401
    approver = httpx.post(
        f"{running.url}/mcp", json=hello, headers={**headers, "Authorization": f"Bearer {APPROVER_TOKEN}"}
    )
    assert approver.status_code == 403 and "ana may not use the MCP surface" in approver.text
    # an agent's token is for MCP alone: the operations API refuses it
    assert running.api(AGENT_TOKEN).get("/status").status_code == 403
    assert running.api(OPERATOR_TOKEN).get("/status").status_code == 200
    # nor the console: an agent's token does not log in
    login = httpx.post(f"{running.url}/login", data={"token": AGENT_TOKEN}, follow_redirects=False)
    assert login.status_code == 401 and "it may use /mcp only" in login.text
    assert "provisioner_session" not in login.cookies


async def test_an_agent_reads_no_personal_data_and_each_call_is_logged_with_its_token(running: Engine):
    seen = await over_http(running, AGENT_TOKEN, "explain_person", worker_id="hr:1001")
    worker = seen.structured_content["worker"]
    assert worker["work_email"] == "ada.lovelace@example.com" and worker["department"] == "Engineering"
    assert "personal_email" not in worker and "employee_number" not in worker
    assert PERSONAL not in seen.content[0].text and EMPLOYEE_NUMBER not in json.dumps(seen.structured_content)
    full = await over_http(running, OPERATOR_TOKEN, "explain_person", worker_id="hr:1001")
    assert full.structured_content["worker"]["employee_number"] == EMPLOYEE_NUMBER

    found = await over_http(running, AGENT_TOKEN, "search_people", query="hopper")
    assert [p["id"] for p in found.structured_content["result"]] == ["hr:1002"]

    calls = [e for e in running.api().get("/log", params={"worker": "hr:1001"}).json() if e["action"] == "mcp_call"]
    said = [(e["attributes"]["token"], e["attributes"]["tool"], e["result"]) for e in calls]
    assert ("claude", "explain_person", "success") in said and ("ops", "explain_person", "success") in said
    assert AGENT_TOKEN not in running.log_file.read_text()


async def test_over_stdio_diff_config_is_provisioner_diff(running: Engine, tmp_path: Path):
    proposed = json.loads(running.config.read_text())
    proposed["policies"] = [
        {"name": "engineers", "when": "worker.department == 'Engineering'", "grant": [{"target": "app"}]}
    ]
    new = tmp_path / "proposed.yaml"
    new.write_text(json.dumps(proposed))
    cli = subprocess.run(
        [*CLI, "diff", "-c", str(new), "--base", str(running.config), "--json"], capture_output=True, timeout=120
    )
    expected = json.loads(cli.stdout)
    assert expected["counts"], cli.stderr  # the change does something: the Sales person loses the app
    async with Client(stdio(running, TOKEN)) as client:
        answer = await client.call_tool("diff_config", {"proposed_yaml": new.read_text()})
    assert not answer.is_error, answer.content
    assert answer.structured_content == expected


async def test_over_stdio_the_agent_gets_what_it_gets_over_http(running: Engine):
    async with Client(stdio(running, AGENT_TOKEN)) as client:
        tools = {t.name for t in (await client.list_tools()).tools}
        answer = await client.call_tool("explain_person", {"worker_id": "hr:1001"})
    assert "request_access" in tools and "explain_person" in tools
    over_web = await over_http(running, AGENT_TOKEN, "explain_person", worker_id="hr:1001")
    mine = {k: v for k, v in answer.structured_content.items() if k != "log"}  # the log now holds the calls
    assert mine == {k: v for k, v in over_web.structured_content.items() if k != "log"}
    assert "personal_email" not in answer.structured_content["worker"]


def test_stdio_needs_a_token_that_may_use_mcp(running: Engine):
    base = {k: v for k, v in os.environ.items() if k != "PROVISIONER_MCP_TOKEN"}
    for token, said in ((None, "set PROVISIONER_MCP_TOKEN"), (APPROVER_TOKEN, "ana may not use the MCP surface")):
        env = {**base, **({"PROVISIONER_MCP_TOKEN": token} if token else {})}
        done = subprocess.run(
            [*CLI, "mcp", "-c", str(running.config)], env=env, stdin=subprocess.DEVNULL, capture_output=True, timeout=60
        )
        assert done.returncode == 2 and said in done.stderr.decode(), done.stderr
        assert b"Traceback" not in done.stderr and done.stdout == b""


async def test_a_request_acts_not_alone_it_names_who_must_approve(running: Engine):
    asked = await over_http(running, AGENT_TOKEN, "request_access", worker_id="hr:1001", target="app", reason="pairing")
    assert not asked.is_error, asked.content
    receipt = asked.structured_content
    assert receipt["state"] == "pending" and "ana" in receipt["approvers"] and receipt["kind"] == "access"
    assert receipt["id"] in asked.content[0].text and "nothing happens before that" in asked.content[0].text
    [pending] = [r for r in running.api().get("/approvals").json() if r["id"] == receipt["id"]]
    assert pending["requested_by"] == "claude" and pending["worker_id"] == "hr:1001"
    # ana's own access: she is the only approver and nobody decides their own, so it is refused now
    own = await over_http(running, AGENT_TOKEN, "request_access", worker_id="hr:1002", target="app")
    assert own.is_error and "nobody decides their own access" in own.content[0].text

    unknown = await over_http(running, AGENT_TOKEN, "request_access", worker_id="hr:1001", target="nowhere")
    assert unknown.is_error and "no target 'nowhere'" in unknown.content[0].text
    rows = running.api().get("/log", params={"worker": "hr:1001"}).json()
    tools = [(e["attributes"]["tool"], e["result"]) for e in rows if e["action"] == "mcp_call"]
    assert ("request_access", "success") in tools and ("request_access", "failure") in tools
