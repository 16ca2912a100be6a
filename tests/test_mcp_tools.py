"""The MCP server in process (the SDK's client on the server object): which tools exist and which
never will, what an agent's token sees of a person, a log row per call, the resources, and the
`agent` role and `sees:` of named tokens. The transports are tests/test_mcp.py."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from mcp import Client
from pydantic import ValidationError
from typer.testing import CliRunner

from provisioner.engine.cli.main import app as cli
from provisioner.engine.config import ApiToken, Config
from provisioner.engine.config.access import DIRECTORY_FIELDS
from provisioner.engine.contracts.events import change_event
from provisioner.engine.contracts.models import Worker
from provisioner.engine.contracts.records import EventOutcome
from provisioner.engine.runtime.mcp import Caller, build_server, caller_of
from provisioner.engine.runtime.mcp.pii import HIDDEN, hidden_values, redact
from provisioner.engine.runtime.mcp.server import FIELDS_URI, POLICIES_URI
from provisioner.engine.runtime.wiring import Parts
from provisioner.targets.rest import PRESETS

pytestmark = pytest.mark.fast

SECRET = "scim-secret-value-0123456789"
PERSONAL = "ada.private@example.net"
READS = {
    "search_people",
    "explain_person",
    "plan_person",
    "diff_config",
    "status",
    "list_failures",
    "list_quarantine",
    "provisioning_log",
    "latest_reconcile",
    "leavers_with_access",
}
ASKS = {"request_provision_now", "request_retry", "request_access"}
ADA = Worker(
    id="hr:1",
    source="hr",
    remote_id="1",
    first_name="Ada",
    last_name="Lovelace",
    work_email="ada@example.com",
    personal_email=PERSONAL,
    employee_number="E-70001",
    department="Engineering",
    location="Marylebone",
    custom={"badge": "B-99123"},
)
AGENT = Caller("claude", DIRECTORY_FIELDS)


@pytest.fixture
def parts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Parts:
    monkeypatch.setenv("SCIM_SECRET", SECRET)
    config = Config.model_validate(
        {
            "store": {"url": f"sqlite:///{tmp_path / 'mcp.db'}"},
            "sources": [{"name": "hr", "type": "file", "path": str(tmp_path / "people.csv")}],
            "targets": [
                {
                    "name": "app",
                    "type": "scim",
                    "base_url": "http://127.0.0.1:9/scim/v2",
                    "auth": {"type": "bearer", "token": SECRET},
                }
            ],
            "policies": [
                {"name": "engineers", "when": "worker.department == 'Engineering'", "grant": [{"target": "app"}]}
            ],
        }
    )
    built = Parts(config)
    with built.store.unit() as s:
        built.store.snapshots.upsert(s, "hr", [ADA])
    return built


async def call(parts: Parts, caller: Caller, tool: str, **arguments: Any) -> Any:
    async with Client(build_server(parts, caller)) as client:
        return await client.call_tool(tool, arguments)


async def test_the_tools_read_or_ask_and_none_lifts_a_halt_deletes_or_changes_policies(parts: Parts):
    async with Client(build_server(parts, AGENT)) as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
    assert set(tools) == READS | ASKS
    for name in READS:
        assert tools[name].annotations and tools[name].annotations.read_only_hint, name
    for name in ASKS:  # the only ones that are not read-only, and they only ask
        assert name.startswith("request_") and not tools[name].annotations.destructive_hint
    forbidden = ("resume", "halt", "delete", "disable", "remove", "policy", "approve", "deny", "apply", "sync")
    assert not [n for n in tools if any(word in n for word in forbidden)]


async def test_an_agent_token_with_sees_directory_gets_no_personal_data(parts: Parts):
    full = await call(parts, Caller("ops"), "explain_person", worker_id="hr:1")
    assert full.structured_content["worker"]["personal_email"] == PERSONAL
    assert full.structured_content["worker"]["custom"] == {"badge": "B-99123"}

    seen = await call(parts, AGENT, "explain_person", worker_id="hr:1")
    worker = seen.structured_content["worker"]
    assert worker["first_name"] == "Ada" and worker["work_email"] == "ada@example.com"
    assert not {"personal_email", "employee_number", "location", "custom"} & set(worker)
    text = seen.content[0].text + json.dumps(seen.structured_content)
    for value in (PERSONAL, "E-70001", "Marylebone", "B-99123"):
        assert value not in text
    assert seen.structured_content["targets"]["app"]["in_scope"] is True  # the answer itself is whole


async def test_every_call_is_logged_with_the_token_name_and_the_tool(parts: Parts):
    await call(parts, AGENT, "explain_person", worker_id="hr:1")
    missing = await call(parts, AGENT, "explain_person", worker_id="hr:404")
    assert missing.is_error and "no worker 'hr:404'" in missing.content[0].text
    rows = [e for e in parts.store.log.recent(limit=10) if e.action == "mcp_call"]
    assert [(e.worker_id, e.attributes["tool"], e.attributes["token"], e.result) for e in rows] == [
        ("hr:1", "explain_person", "claude", "success"),
        ("hr:404", "explain_person", "claude", "failure"),
    ]
    assert rows[0].reason == "explain_person by claude"


async def test_the_log_tells_an_agent_whom_other_calls_were_about_not_what_they_typed(parts: Parts):
    await call(parts, Caller("ops"), "search_people", query=PERSONAL)
    await call(parts, Caller("ops"), "explain_person", worker_id="hr:1")
    rows = (await call(parts, AGENT, "provisioning_log")).structured_content["result"]
    assert PERSONAL not in json.dumps(rows)
    told = [(r["attributes"]["tool"], r["attributes"]["arguments"]) for r in rows if r["action"] == "mcp_call"]
    assert told[:2] == [("search_people", {}), ("explain_person", {"worker_id": "hr:1"})]


async def test_status_tells_an_agent_no_hidden_value_in_an_apps_latest_error(parts: Parts):
    event = change_event("hr", None, None, ADA)
    outcome = EventOutcome(event.id, event)
    outcome.fail("app", "create", f"409: userName {PERSONAL} is taken", transient=False)
    with parts.store.unit() as s:
        parts.store.failures.record(s, [outcome])
    full = await call(parts, Caller("ops"), "status")
    assert PERSONAL in full.structured_content["failures"]["app"]["latest_error"]
    seen = await call(parts, AGENT, "status")
    assert seen.structured_content["failures"]["app"]["latest_error"] == f"409: userName {HIDDEN} is taken"


async def test_no_answer_tells_a_secret_of_the_config_even_to_an_operator(parts: Parts, tmp_path: Path):
    initial = "initial-password-4711"
    data = parts.config.model_dump(mode="json", exclude={"api"})
    data["targets"][0] |= {"auth": {"type": "bearer", "token": SECRET}, "mapping": {"password": initial}}
    with_password = Parts(Config.model_validate(data))
    plan = await call(with_password, Caller("ops"), "plan_person", worker_id="hr:1")
    [create] = plan.structured_content["actions"]
    assert create["attributes"]["password"] == "[secret]"
    diff = await call(with_password, Caller("ops"), "diff_config", proposed_yaml=proposed({"userName": "x"}))
    assert initial not in diff.content[0].text + json.dumps(diff.structured_content)


async def test_a_diff_of_a_proposed_config_that_does_not_load_says_why_in_one_answer(parts: Parts):
    bad = await call(parts, AGENT, "diff_config", proposed_yaml="policies: [{name: x, when: 'worker.nope == 1'}]")
    assert bad.is_error and "the proposed config" in bad.content[0].text and "Traceback" not in bad.content[0].text


def proposed(mapping: dict[str, str], probe: str = "false") -> str:
    """The running config with this mapping, and a new target `wiki` for whoever `probe` matches."""
    scim = {"type": "scim", "base_url": "http://127.0.0.1:9/scim/v2"}
    return json.dumps(
        {
            "sources": [{"name": "hr", "type": "file", "path": "people.csv"}],
            "targets": [{"name": "app", **scim, "mapping": mapping}, {"name": "wiki", **scim}],
            "policies": [
                {"name": "engineers", "when": "worker.department == 'Engineering'", "grant": [{"target": "app"}]},
                {"name": "probe", "when": probe, "grant": [{"target": "wiki"}]},
            ],
        }
    )


async def test_a_proposed_config_reads_none_of_the_engines_environment(parts: Parts):
    # Expanded, ${SCIM_SECRET} in a mapping would come back in the diff's list of mapping changes.
    answer = await call(parts, AGENT, "diff_config", proposed_yaml=proposed({"title": "${SCIM_SECRET}"}))
    assert not answer.is_error
    assert SECRET not in answer.content[0].text + json.dumps(answer.structured_content)
    [title] = [m for m in answer.structured_content["mappings"] if m["attribute"] == "title"]
    assert title["new"] == "${SCIM_SECRET}"  # as written


async def test_a_proposed_config_names_presets_not_files(parts: Parts, tmp_path: Path):
    (tmp_path / "elsewhere.yaml").write_text("mapping: {title: read-from-disk}\n")
    outside = os.path.relpath(tmp_path / "elsewhere", PRESETS)
    rest = {"name": "app", "type": "rest", "base_url": "http://127.0.0.1:9", "preset": outside}
    config = {"targets": [rest], "policies": [{"name": "engineers", "grant": [{"target": "app"}]}]}
    answer = await call(parts, AGENT, "diff_config", proposed_yaml=json.dumps(config))
    assert answer.is_error and "unknown preset" in answer.content[0].text
    assert "read-from-disk" not in answer.content[0].text


async def test_a_proposed_config_cannot_spell_out_what_the_token_does_not_see(parts: Parts):
    # Who is in scope of a condition on a hidden field would tell that field, one guess at a time.
    probe = proposed({}, probe="worker.personal_email.startswith('ada.p')")
    full = await call(parts, Caller("ops"), "diff_config", proposed_yaml=probe)
    assert [(c["target"], c["kind"]) for c in full.structured_content["changes"]] == [("wiki", "create")]
    seen = await call(parts, AGENT, "diff_config", proposed_yaml=probe)
    assert seen.structured_content["changes"] == []  # to the agent, Ada's personal email is unknown
    assert "only the fields claude sees" in seen.structured_content["notes"][-1]


async def test_search_matches_no_field_the_token_does_not_see(parts: Parts):
    assert (
        len((await call(parts, Caller("ops"), "search_people", query="ada.private")).structured_content["result"]) == 1
    )
    assert (await call(parts, AGENT, "search_people", query="ada.private")).structured_content["result"] == []
    assert len((await call(parts, AGENT, "search_people", query="lovelace")).structured_content["result"]) == 1


async def test_the_resources_show_the_policies_without_secrets_and_the_worker_fields(parts: Parts):
    async with Client(build_server(parts, AGENT)) as client:
        uris = {str(r.uri) for r in (await client.list_resources()).resources}
        assert {POLICIES_URI, FIELDS_URI} <= uris
        policies = (await client.read_resource(POLICIES_URI)).contents[0].text
        fields = json.loads((await client.read_resource(FIELDS_URI)).contents[0].text)
    assert json.loads(policies)["policies"][0]["name"] == "engineers" and SECRET not in policies
    by_name = {f["name"]: f for f in fields}
    assert by_name["personal_email"]["directory"] is False and by_name["work_email"]["directory"] is True
    assert set(Worker.model_fields) <= set(by_name)
    reads = [e.attributes for e in parts.store.log.recent(limit=10) if e.action == "mcp_call"]
    assert [(r["tool"], r["token"], r["arguments"]["uri"]) for r in reads] == [
        ("read_resource", "claude", POLICIES_URI),
        ("read_resource", "claude", FIELDS_URI),
    ]


def test_redaction_reaches_values_written_elsewhere():
    values = hidden_values([ADA], DIRECTORY_FIELDS)
    row = {"worker_id": "hr:1", "attributes": {"emails": [{"value": PERSONAL}]}, "reason": f"{PERSONAL} is taken"}
    assert redact(row, DIRECTORY_FIELDS, values) == {
        "worker_id": "hr:1",
        "attributes": {"emails": [{"value": HIDDEN}]},
        "reason": f"{HIDDEN} is taken",
    }
    assert redact(row, None, values) is row  # an operator's answer is left alone
    shouted = {"worker_id": "hr:1", "attributes": {"site": "MARYLEBONE", "mail": PERSONAL.upper()}}
    assert redact(shouted, DIRECTORY_FIELDS, values)["attributes"] == {"site": HIDDEN, "mail": HIDDEN}


def test_named_tokens_have_an_agent_role_and_say_what_they_see():
    token = "t" * 20
    agent = ApiToken(name="claude", token=token, roles=["agent"])
    assert agent.visible_fields() == DIRECTORY_FIELDS
    assert ApiToken(name="b", token=token, roles=["agent"], sees="all").visible_fields() is None
    assert ApiToken(name="c", token=token, roles=["operator"]).visible_fields() is None  # operators see all
    assert ApiToken(name="d", token=token, roles=["agent"], sees=["title"]).visible_fields() == {"id", "title"}
    with pytest.raises(ValidationError, match="at least 1 item"):
        ApiToken(name="f", token=token, roles=[])
    with pytest.raises(ValidationError, match="no Worker field salary"):
        ApiToken(name="e", token=token, roles=["agent"], sees=["title", "salary"])
    config = Config.model_validate(
        {"api": {"tokens": [agent.model_dump() | {"token": token}, {"name": "ana", "token": "a" * 20}]}}
    )
    assert caller_of(config, "claude", operator=False) == Caller("claude", DIRECTORY_FIELDS)
    assert caller_of(config, "ana", operator=False) is None  # an approver alone may not use MCP
    assert caller_of(config, None, operator=True) == Caller("api.token")


async def test_every_read_tool_answers_with_its_read_model_and_a_line_a_person_reads(parts: Parts):
    async with Client(build_server(parts, AGENT)) as client:
        answers = {
            name: await client.call_tool(name, arguments)
            for name, arguments in {
                "search_people": {"query": "lovelace"},
                "plan_person": {"worker_id": "hr:1"},
                "status": {},
                "list_failures": {},
                "list_quarantine": {},
                "provisioning_log": {"worker": "hr:1"},
                "leavers_with_access": {},
                "latest_reconcile": {},
            }.items()
        }
        bad_since = await client.call_tool("provisioning_log", {"since": "last tuesday"})
        bad_result = await client.call_tool("provisioning_log", {"result": "great"})
    [found] = answers["search_people"].structured_content["result"]
    assert found["id"] == "hr:1" and found["name"] == "Ada Lovelace"
    assert answers["search_people"].content[0].text.startswith("1 person")
    plan = answers["plan_person"].structured_content
    assert plan["worker_id"] == "hr:1" and [a["action"] for a in plan["actions"]] == ["create"]
    status = answers["status"]
    assert status.structured_content["halted"] == [] and "0 halted sources" in status.content[0].text
    assert answers["list_failures"].structured_content == {"result": []}
    assert answers["leavers_with_access"].structured_content == {"access_not_removed": [], "may_keep_access": []}
    missing = answers["latest_reconcile"]
    assert missing.is_error and "no reconciliation has run yet" in missing.content[0].text
    assert bad_since.is_error and "last tuesday" in bad_since.content[0].text
    assert bad_result.is_error and "result is one of success" in bad_result.content[0].text


def test_provisioner_mcp_says_in_one_line_what_keeps_it_from_starting(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    token = "t" * 20
    monkeypatch.setenv("AGENT_TOKEN", token)
    monkeypatch.setenv("PROVISIONER_MCP_TOKEN", token)
    config = tmp_path / "c.yaml"
    tokens = [{"name": "claude", "token": "${AGENT_TOKEN}", "roles": ["agent"]}]
    unreachable = {"url": "postgresql://nobody@127.0.0.1:1/x"}
    config.write_text(json.dumps({"store": unreachable, "api": {"tokens": tokens}}))
    for arguments, said in (
        ([], "cannot open the store at postgresql"),
        (["--token-env", ""], "--token-env names no variable"),
        (["--token-env", "UNSET_TOKEN"], "set UNSET_TOKEN to your agent's token"),
    ):
        out = CliRunner().invoke(cli, ["mcp", "-c", str(config), *arguments], env={"COLUMNS": "200"})
        assert out.exit_code == 2 and said in out.output and "Traceback" not in out.output, out.output


async def test_quarantine_of_a_source_the_config_does_not_name_is_an_error_everywhere(parts: Parts):
    # The CLI exits 2 on it; the API (404) and MCP say the same rather than answer an empty list.
    answer = await call(parts, AGENT, "list_quarantine", source="workday")
    assert answer.is_error and "no source 'workday' in the config (known: hr)" in answer.content[0].text
    assert (await call(parts, AGENT, "list_quarantine", source="hr")).is_error is False
