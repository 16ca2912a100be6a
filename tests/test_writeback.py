"""Writeback (docs/writeback.md): the email a SCIM app assigns goes back to BambooHR and Workday, over
HTTP to their emulators, through the whole engine on the in-memory bus; refused writes are dead
letters `provisioner failures` lists, transient ones are retried, and the HR change that follows
plans nothing for the app."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import Result
from typer.testing import CliRunner

from provisioner.engine.cli.main import app as cli
from provisioner.engine.config import Config, ConfigError, load_config
from provisioner.engine.contracts.protocols import SourceError, WritebackRefused, WritesBack
from provisioner.engine.kit.servers import BackgroundServer, scim_app, serve_asgi, serve_wsgi
from provisioner.engine.runtime.app import Runtime
from provisioner.engine.runtime.memory_bus import MemoryBus
from provisioner.sources import build_source
from provisioner.sources.bamboohr.emulator import EmulatorState, create_app
from provisioner.sources.workday.emulator import WorkdayState
from provisioner.sources.workday.emulator import create_app as workday_app
from tests.scim_front import Front

VALUE = "{{ account.emails[0].value }}"
NAME = "{{ account.userName }}"


class Apps:
    """A BambooHR and a Workday emulator, and a scim2-server behind a front that, like Google
    Workspace, gives every new user an address of its own domain: `<userName>@corp.example`."""

    def __init__(self, bamboo: BackgroundServer, workday: BackgroundServer, front: Front, front_url: str):
        self.bamboo, self.workday, self.front, self.front_url = bamboo, workday, front, front_url
        self.bamboo_state, self.workday_state = EmulatorState(), WorkdayState()

    def config(self, store_url: str, **extra: Any) -> dict[str, Any]:
        return {
            "store": {"url": store_url},
            "retry": {"initial": "1s", "max": "2s", "attempts": 3},
            "sources": [
                {
                    "name": "bamboohr",
                    "type": "bamboohr",
                    "base_url": f"{self.bamboo.url}/api/gateway.php/acme",
                    "api_key": self.bamboo_state.api_key,
                    "max_attempts": 1,
                },
                {
                    "name": "workday",
                    "type": "workday",
                    "base_url": f"{self.workday.url}/ccx/service/acme/Human_Resources/v40.0",
                    "username": self.workday_state.username,
                    "password": self.workday_state.password,
                    "max_attempts": 1,
                },
            ],
            "targets": [
                {
                    "name": "google",
                    "type": "scim",
                    "base_url": self.front_url,
                    "bulk": False,
                    "max_attempts": 2,
                    "mapping": {
                        "userName": "{{ (worker.first_name ~ '.' ~ worker.last_name ~ worker.remote_id) | lower }}",
                        "externalId": "{{ worker.id }}",
                        "name.givenName": "{{ worker.first_name }}",
                        "name.familyName": "{{ worker.last_name }}",
                        'emails[type eq "work"].value': "{{ worker.work_email or '' }}",
                    },
                }
            ],
            "policies": [{"name": "everyone", "when": "true", "grant": [{"target": "google"}]}],
            "writeback": [
                {"source": "bamboohr", "field": "work_email", "from": {"target": "google", "value": VALUE}},
                {"source": "workday", "field": "work_email", "from": {"target": "google", "value": VALUE}},
            ],
            **extra,
        }

    def assigned(self, user_name: str) -> str:
        return f"{user_name}@corp.example"

    def writes(self) -> list[tuple[str, str, int]]:
        """The user writes the app answered after creation (PATCH or PUT)."""
        return [seen for seen in self.front.seen if seen[0] in ("PATCH", "PUT") and seen[1].startswith("/Users")]


def _assign_email(method: str, path: str, body: Any) -> Any:
    if method == "POST" and path.rstrip("/") == "/Users" and isinstance(body, dict):
        body = {**body, "emails": [{"value": f"{body['userName']}@corp.example", "type": "work", "primary": True}]}
    return body


@pytest.fixture
def apps() -> Iterator[Apps]:
    bamboo_state, workday_state = EmulatorState(), WorkdayState()
    with contextlib.ExitStack() as stack:
        bamboo = stack.enter_context(serve_asgi(create_app(bamboo_state)))
        workday = stack.enter_context(serve_asgi(workday_app(workday_state)))
        scim = stack.enter_context(serve_wsgi(scim_app()))
        front = Front(scim.url, rewrite_request=_assign_email)
        served = stack.enter_context(serve_asgi(front.app()))
        found = Apps(bamboo, workday, front, served.url)
        found.bamboo_state, found.workday_state = bamboo_state, workday_state
        yield found


def hire(apps: Apps) -> tuple[str, str]:
    """One new hire in each HR system, neither with a work email yet."""
    bamboo_id = apps.bamboo_state.hire(first_name="Ada", last_name="Byron", workEmail=None)["id"]
    workday_id = apps.workday_state.hire(first_name="Alan", last_name="Turing", personal_email="alan@home.example")
    apps.workday_state.change(workday_id, work_email=None)
    return bamboo_id, workday_id


@asynccontextmanager
async def engine(config: dict[str, Any]) -> AsyncIterator[Runtime]:
    async with Runtime(Config.model_validate(config), bus=MemoryBus()) as runtime:
        yield runtime


async def invoke(args: list[str]) -> Result:
    """A CLI command, in a thread: it runs its own event loop."""
    return await asyncio.to_thread(CliRunner().invoke, cli, args)


async def cycle(runtime: Runtime) -> None:
    for source in ("bamboohr", "workday"):
        await runtime.poll(source)
    await runtime.wait_idle(timeout=30)


async def test_one_cycle_leaves_both_hr_systems_holding_the_email_the_app_assigned(apps: Apps, store_url: str):
    bamboo_id, workday_id = hire(apps)
    async with engine(apps.config(store_url)) as runtime:
        await cycle(runtime)
        assert apps.bamboo_state.employees[bamboo_id]["workEmail"] == apps.assigned(f"ada.byron{bamboo_id}")
        assert apps.workday_state.workers[workday_id]["work_email"] == apps.assigned(f"alan.turing{workday_id}")
        log = [e for e in runtime.store.log.recent(limit=100) if e.action == "writeback"]
        assert {(e.target, e.result) for e in log} == {
            ("writeback:bamboohr", "success"),
            ("writeback:workday", "success"),
        }
        assert runtime.store.failures.all() == []

        # The next polls see the value HR now holds: an update whose plan leaves the app alone, and
        # nothing is written back again.
        writes_before = len(apps.writes())
        await cycle(runtime)
        await cycle(runtime)
        assert len(apps.writes()) == writes_before
        again = [e for e in runtime.store.log.recent(limit=100) if e.action == "writeback"]
        assert len(again) == 2
        stored = runtime.store.snapshots.get(f"bamboohr:{bamboo_id}")
        assert stored is not None and stored.work_email == apps.assigned(f"ada.byron{bamboo_id}")


async def test_a_refused_value_is_a_dead_letter_that_failures_lists(apps: Apps, tmp_path: Path):
    apps.bamboo_state.locked_fields.add("workEmail")
    bamboo_id, workday_id = hire(apps)
    config = apps.config(f"sqlite:///{tmp_path / 's.db'}")
    async with engine(config) as runtime:
        await cycle(runtime)
        [failure] = runtime.store.failures.all()
    assert (failure.worker_id, failure.target, failure.state) == (f"bamboohr:{bamboo_id}", "writeback:bamboohr", "dead")
    assert "403" in failure.last_error and "workEmail" in failure.last_error
    assert apps.bamboo_state.employees[bamboo_id]["workEmail"] is None
    # The other source's writeback is not held back by it.
    assert apps.workday_state.workers[workday_id]["work_email"] == apps.assigned(f"alan.turing{workday_id}")
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    shown = await invoke(["failures", "--config", str(path), "--target", "writeback:bamboohr", "--json"])
    assert shown.exit_code == 0, shown.output
    [row] = json.loads(shown.stdout)
    assert (row["target"], row["action"], row["state"]) == ("writeback:bamboohr", "writeback", "dead")
    # `plan` shows the value still due, read from the app; `explain` the rule and its last run.
    planned = await invoke(["plan", "--config", str(path), "--json"])
    assert planned.exit_code == 0, planned.output
    due = [a for a in json.loads(planned.stdout) if a["action"] == "writeback"]
    assert [(a["worker_id"], a["target"], a["attributes"]) for a in due] == [
        (f"bamboohr:{bamboo_id}", "writeback:bamboohr", {"work_email": apps.assigned(f"ada.byron{bamboo_id}")})
    ]
    explained = await invoke(["explain", "--config", str(path), "--worker", f"bamboohr:{bamboo_id}"])
    assert explained.exit_code == 0, explained.output
    assert "writeback:bamboohr: writes back work_email from google" in explained.output
    assert "writeback failure" in explained.output


async def test_plan_shows_the_writeback_an_account_to_be_created_will_bring(apps: Apps, tmp_path: Path):
    bamboo_id, _ = hire(apps)
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(apps.config(f"sqlite:///{tmp_path / 's.db'}")))
    planned = await invoke(["plan", "--config", str(path), "--json"])
    assert planned.exit_code == 0, planned.output
    due = {a["worker_id"]: a for a in json.loads(planned.stdout) if a["action"] == "writeback"}
    assert due[f"bamboohr:{bamboo_id}"]["reason"].startswith("work_email from google: once google creates")
    assert not [s for s in apps.front.seen if s[0] == "POST"]  # plan changes nothing
    assert apps.bamboo_state.employees[bamboo_id]["workEmail"] is None


async def test_a_transient_failure_is_retried_until_hr_holds_the_value(apps: Apps, tmp_path: Path):
    bamboo_id, _ = hire(apps)
    async with engine(apps.config(f"sqlite:///{tmp_path / 's.db'}")) as runtime:
        await runtime.poll("workday")  # only BambooHR below, so its 503s are all the writeback's
        await runtime.wait_idle(timeout=30)
        await runtime.poll("bamboohr")
        apps.bamboo_state.faults.fail_status, apps.bamboo_state.faults.fail_next = 503, 1_000
        await runtime.wait_idle(timeout=30)
        [failure] = runtime.store.failures.all()
        assert (failure.target, failure.state, failure.action) == ("writeback:bamboohr", "retrying", "writeback")
        assert apps.bamboo_state.employees[bamboo_id]["workEmail"] is None
        apps.bamboo_state.faults.fail_next = 0
        assert runtime.retry_due(everything=True) == 1
        await runtime.wait_idle(timeout=30)
        assert runtime.store.failures.all() == []
    assert apps.bamboo_state.employees[bamboo_id]["workEmail"] == apps.assigned(f"ada.byron{bamboo_id}")


@pytest.mark.fast
def test_validate_names_the_line_of_a_bad_writeback(tmp_path: Path):
    path = tmp_path / "config.yaml"
    path.write_text(
        "sources:\n  - {name: hr, type: bamboohr, base_url: 'http://hr', api_key: k}\n"
        "targets:\n  - {name: google, type: scim, base_url: 'http://g'}\n"
        "writeback:\n"
        "  - {source: hr, field: work_email, from: {target: google, value: '{{ account.userName }}'}}\n"
        "  - {source: hris, field: phone, from: {target: gmail, value: '{{ account.userName'}}\n"
    )
    with pytest.raises(ConfigError) as raised:
        load_config(path)
    said = str(raised.value)
    assert f"{path}:7: writeback[1].source: unknown source 'hris'" in said
    assert "writeback[1].from.target: unknown target 'gmail'" in said
    assert "writeback[1].field: Input should be 'work_email' or 'username'" in said
    assert "writeback[1].from.value" in said


def settings(apps: Apps, i: int) -> dict[str, Any]:
    """A source's own settings, as its config entry holds them."""
    return {k: v for k, v in apps.config("sqlite://")["sources"][i].items() if k not in ("name", "type")}


async def test_bamboohr_writes_a_work_email_and_says_no_as_bamboohr_does(apps: Apps):
    emp = apps.bamboo_state.hire(first_name="Grace", last_name="Hopper", workEmail=None)["id"]
    source = build_source("bamboohr", "bamboohr", settings(apps, 0))
    assert isinstance(source, WritesBack)
    try:
        await source.write_back(emp, {"work_email": "grace@corp.example"})
        assert apps.bamboo_state.employees[emp]["workEmail"] == "grace@corp.example"
        refusals = [
            ("404", emp + "0", {"work_email": "x@corp.example"}),  # no such employee
            ("400", emp, {"work_email": "not an address"}),
            ("no field for username", emp, {"username": "ghopper"}),
        ]
        for said, remote_id, values in refusals:
            with pytest.raises(WritebackRefused, match=said):
                await source.write_back(remote_id, values)
        apps.bamboo_state.faults.fail_status, apps.bamboo_state.faults.fail_next = 503, 10
        with pytest.raises(SourceError) as transient:
            await source.write_back(emp, {"work_email": "g.hopper@corp.example"})
        assert not isinstance(transient.value, WritebackRefused)
    finally:
        await source.aclose()
    assert apps.bamboo_state.employees[emp]["workEmail"] == "grace@corp.example"


async def test_workday_writes_an_email_and_a_username_and_confirms_them_by_get_workers(apps: Apps):
    emp = apps.workday_state.hire(first_name="Edsger", last_name="Dijkstra", personal_email="ewd@home.example")
    source = build_source("workday", "workday", settings(apps, 1))
    assert isinstance(source, WritesBack)
    try:
        await source.write_back(emp, {"work_email": "ewd@corp.example", "username": "ewd"})
        held = apps.workday_state.workers[emp]
        assert (held["work_email"], held["user_id"], held["home_email"]) == (
            "ewd@corp.example",
            "ewd",
            "ewd@home.example",
        )
        read = await source.fetch_one(emp)
        assert (read.workers[0].work_email, read.workers[0].username) == ("ewd@corp.example", "ewd")
        with pytest.raises(WritebackRefused, match=r"Client\.validationError.*not a valid ID"):
            await source.write_back("99999", {"work_email": "x@corp.example"})
        with pytest.raises(WritebackRefused, match="Email Address is not valid"):
            await source.write_back(emp, {"work_email": "nope"})
        apps.workday_state.locked_fields.add("user_id")
        with pytest.raises(WritebackRefused, match="not authorized"):
            await source.write_back(emp, {"username": "edsger"})
    finally:
        await source.aclose()


def test_validate_refuses_a_source_that_cannot_write_back(tmp_path: Path):
    (tmp_path / "people.json").write_text("[]")
    path = tmp_path / "config.yaml"
    path.write_text(
        f"store: {{url: 'sqlite:///{tmp_path / 's.db'}'}}\n"
        f"sources:\n  - {{name: hr, type: file, path: '{tmp_path / 'people.json'}'}}\n"
        "targets:\n  - {name: google, type: scim, base_url: 'http://g'}\n"
        "writeback:\n"
        "  - {source: hr, field: work_email, from: {target: google, value: '{{ account.userName }}'}}\n"
    )
    said = CliRunner().invoke(cli, ["validate", "--config", str(path)])
    assert said.exit_code == 2
    assert "writeback: source 'hr' cannot write values back to its HR system" in " ".join(said.output.split())


async def test_two_rules_from_two_targets_leave_neither_app_to_be_written_again(apps: Apps, store_url: str):
    # work_email from google and username from a second app: after HR takes both, the HR change
    # that follows plans nothing for either app (each account's link is moved, not only the last).
    _bamboo_id, workday_id = hire(apps)
    apps.workday_state.workers[workday_id]["user_id"] = None  # no account name in HR yet
    with serve_wsgi(scim_app()) as directory:
        config = apps.config(store_url)
        config["sources"] = [s for s in config["sources"] if s["name"] == "workday"]
        user_name = "{{ worker.username or (worker.first_name ~ worker.remote_id) | lower }}"
        config["targets"].append(
            {
                "name": "directory",
                "type": "scim",
                "base_url": directory.url,
                "bulk": False,
                "mapping": {"userName": user_name, "externalId": "{{ worker.id }}"},
            }
        )
        config["policies"][0]["grant"].append({"target": "directory"})
        config["writeback"] = [
            {"source": "workday", "field": "work_email", "from": {"target": "google", "value": VALUE}},
            {"source": "workday", "field": "username", "from": {"target": "directory", "value": NAME}},
        ]
        async with engine(config) as runtime:
            await runtime.poll("workday")
            await runtime.wait_idle(timeout=30)
            held = apps.workday_state.workers[workday_id]
            assert held["work_email"] == apps.assigned(f"alan.turing{workday_id}")
            assert held["user_id"] == f"alan{workday_id}"
            writes_before = len(apps.writes())
            await runtime.poll("workday")
            await runtime.wait_idle(timeout=30)
            assert len(apps.writes()) == writes_before


def test_validate_refuses_a_field_the_vendor_cannot_write(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    # SuccessFactors takes the work email (a PerEmail upsert) and nothing else: a username rule is
    # refused by `validate`, not discovered by the first hire's failed writeback.
    monkeypatch.setenv("SF_PASSWORD", "pw")
    path = tmp_path / "config.yaml"
    path.write_text(
        f"store: {{url: 'sqlite:///{tmp_path / 's.db'}'}}\n"
        "sources:\n  - {name: sf, type: successfactors, base_url: 'http://sf', company_id: acme,\n"
        "     username: api, password: '${SF_PASSWORD}'}\n"
        "targets:\n  - {name: google, type: scim, base_url: 'http://g'}\n"
        "writeback:\n"
        "  - {source: sf, field: username, from: {target: google, value: '{{ account.userName }}'}}\n"
    )
    said = CliRunner().invoke(cli, ["validate", "--config", str(path)])
    assert said.exit_code == 2, said.output
    assert "source 'sf' cannot write username back to its HR system (it writes work_email)" in " ".join(
        said.output.split()
    )
