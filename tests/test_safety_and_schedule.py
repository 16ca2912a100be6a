"""The mass-deprovision guard and deferred actions, through the whole flow on the in-memory bus (fast
tier) and a real scim2-server."""

from __future__ import annotations

import json
import logging
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from provisioner.engine.cli.main import app
from provisioner.engine.contracts.ports import FixedClock
from provisioner.engine.contracts.records import Link
from provisioner.engine.runtime.app import Runtime
from provisioner.engine.runtime.memory_bus import MemoryBus
from provisioner.engine.runtime.ondemand import provision_one
from provisioner.engine.runtime.usecases.fire_due import fire_due
from provisioner.engine.runtime.usecases.ingest import ingest
from provisioner.engine.runtime.wiring import Parts
from provisioner.engine.store import Deferred
from tests.conftest import make_config, scim_users
from tests.test_end_to_end import by_external_id, sync, write

pytestmark = pytest.mark.fast


def staff(n: int) -> list[dict[str, str]]:
    return [
        {
            "remote_id": str(i),
            "first_name": f"P{i}",
            "last_name": "X",
            "work_email": f"p{i}@example.com",
            "employment_type": "full_time",
            "status": "active",
        }
        for i in range(n)
    ]


async def test_a_source_that_suddenly_returns_nobody_halts_instead_of_deprovisioning(tmp_path, scim_server, scim):
    people = tmp_path / "people.json"
    write(people, *staff(6))
    config = make_config(
        f"sqlite:///{tmp_path / 's.db'}",
        scim_server.url,
        {"name": "hr", "type": "file", "path": str(people)},
        safety={"max_deprovisions": 3, "max_deprovision_ratio": None},
    )
    config_file = tmp_path / "config.yaml"
    config_file.write_text(json.dumps(config.model_dump(mode="json")))  # JSON is YAML
    cli = CliRunner()
    async with Runtime(config, bus=MemoryBus()) as runtime:
        assert await sync(runtime) == 6
        write(people)  # the export came back empty
        result = await runtime.poll("hr")
        await runtime.wait_idle(timeout=60)
        assert len(result.held) == 6 and result.events == []
        assert "6 workers would be deprovisioned" in (result.halted or "")
        assert all(u["active"] for u in scim_users(scim)) and len(scim_users(scim)) == 6

        status = json.loads(cli.invoke(app, ["status", "-c", str(config_file), "--json"]).stdout)
        assert status["sources"][0]["halted"] is True and "max_deprovisions: 3" in status["sources"][0]["reason"]

        # While halted, other changes still flow and the held ones are found again next poll.
        write(people, *staff(6), *staff(7)[6:])
        result = await runtime.poll("hr")
        await runtime.wait_idle(timeout=60)
        assert len(result.events) == 1 and len(scim_users(scim)) == 7

        write(people, *staff(7)[1:])  # one real leaver: still held, a person has to look first
        assert len((await runtime.poll("hr")).held) == 1

        resumed = cli.invoke(app, ["resume", "hr", "-c", str(config_file)])
        assert resumed.exit_code == 0 and "resumed" in resumed.stdout
        result = await runtime.poll("hr")
        await runtime.wait_idle(timeout=60)
        assert [e.subject for e in result.events] == ["hr:0"] and not result.halted
        assert not by_external_id(scim)["hr:0"]["active"]
        assert sum(u["active"] for u in scim_users(scim)) == 6


async def test_future_dated_termination_fires_when_due_and_a_later_change_replaces_it(tmp_path, scim_server, scim):
    people = tmp_path / "people.json"
    ada = staff(1)[0]
    leaving = {**ada, "termination_date": (date.today() + timedelta(days=3)).isoformat()}
    write(people, leaving)
    config = make_config(
        f"sqlite:///{tmp_path / 's.db'}", scim_server.url, {"name": "hr", "type": "file", "path": str(people)}
    )
    async with Runtime(config, bus=MemoryBus()) as runtime:
        await sync(runtime)
        assert by_external_id(scim)["hr:0"]["active"]
        [scheduled] = runtime.store.schedule.deferred("hr:0")
        assert scheduled.action == "disable" and scheduled.effective_at.date() == date.today() + timedelta(days=3)
        assert await runtime.fire_due() == 0  # not yet

        # The termination is rescinded: the schedule is replaced by nothing.
        write(people, ada)
        await sync(runtime)
        assert runtime.store.schedule.deferred("hr:0") == []

        # Terminated again, and the day comes: the scheduler re-plans from the snapshot and disables.
        write(people, leaving)
        await sync(runtime)
        assert len(runtime.store.schedule.deferred("hr:0")) == 1
        later = datetime.now(UTC) + timedelta(days=4)
        runtime.parts.applier.clock = lambda: later
        assert await runtime.fire_due(later) == 1
        await runtime.wait_idle(timeout=60)
        assert not by_external_id(scim)["hr:0"]["active"]
        assert runtime.store.schedule.deferred("hr:0") == []
        # the disable, then the managed groups leave with it (remove_groups, the default since issue 25)
        disabled, removed = runtime.store.log.recent("hr:0")[-2:]
        assert (disabled.action, removed.action) == ("disable", "remove_groups")
        assert disabled.reason.endswith("scheduled change due")


async def test_scheduled_terminations_falling_due_together_pass_the_safety_guard(tmp_path, scim_server, scim):
    people = tmp_path / "people.json"
    soon = (date.today() + timedelta(days=3)).isoformat()
    write(people, *staff(5))
    config = make_config(
        f"sqlite:///{tmp_path / 's.db'}",
        scim_server.url,
        {"name": "hr", "type": "file", "path": str(people)},
        safety={"max_deprovisions": 2, "max_deprovision_ratio": None},
    )
    async with Runtime(config, bus=MemoryBus()) as runtime:
        await sync(runtime)
        # A bad import dates four terminations for the same day; each poll event is only an update
        # with a scheduled disable, so the poll guard lets it through...
        write(people, *[{**p, "termination_date": soon} for p in staff(4)], *staff(5)[4:])
        await sync(runtime)
        assert len(runtime.store.schedule.deferred()) == 4
        # ...and the day comes: the four disables fall due together and trip the guard instead.
        later = datetime.now(UTC) + timedelta(days=4)
        runtime.parts.applier.clock = lambda: later
        assert await runtime.fire_due(later) == 0
        state = runtime.store.sources.states()["hr"]
        assert state.halted and "4 workers would be deprovisioned by scheduled changes" in state.reason
        assert len(runtime.store.schedule.deferred()) == 4 and all(u["active"] for u in scim_users(scim))

        assert runtime.store.sources.resume("hr")  # a person looked: the terminations are real
        assert await runtime.fire_due(later) == 4
        await runtime.wait_idle(timeout=60)
        assert sum(u["active"] for u in scim_users(scim)) == 1 and runtime.store.schedule.deferred() == []


# In process, without a broker: the Ingest use case only writes the outbox, and the gate is the same
# one a poll, due work and provision-now pass.


def linked_parts(tmp_path: Path, n: int, url: str | None = None, **safety: Any) -> tuple[Parts, Path]:
    """A file source of `n` people, each with an account in `app` (no app is called), in the store
    at `url` (a new SQLite file by default)."""
    people = tmp_path / "people.json"
    write(people, *staff(n))
    config = make_config(
        url or f"sqlite:///{tmp_path / 's.db'}",
        "http://127.0.0.1:9/scim",
        {"name": "hr", "type": "file", "path": str(people)},
        safety={"max_deprovision_ratio": None, **safety},
    )
    parts = Parts(config)
    parts.store.links.reconcile([Link(worker_id=f"hr:{i}", target="app", account_id=f"a{i}") for i in range(n)], [], [])
    return parts, people


async def test_the_gate_halts_a_poll_once_and_a_resume_lets_it_through_once(tmp_path, caplog):
    parts, people = linked_parts(tmp_path, 5, max_deprovisions=2)
    gate = parts.gate
    try:
        assert len((await ingest(parts.sources["hr"], parts.store, gate)).events) == 5
        write(people, *staff(5)[:1])  # four leave at once
        with caplog.at_level(logging.INFO, logger="provisioner.poll"):
            held = await ingest(parts.sources["hr"], parts.store, gate)
            again = await ingest(parts.sources["hr"], parts.store, gate)
        assert (
            len(held.held) == 4
            and held.events == []
            and "4 workers would be deprovisioned in one poll" in (held.halted or "")
        )
        assert parts.store.snapshots.count("hr") == 5  # their snapshots stay: found again next poll
        assert len(again.held) == 4 and again.halted == held.halted
        said = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
        assert said[0].startswith("source hr halted: 4 workers") and "the rest was applied" in said[0]
        assert said[1] == f"source hr is halted ({held.halted}): 4 deprovisioning events held back"

        assert parts.store.sources.resume("hr")
        through = await ingest(parts.sources["hr"], parts.store, gate)
        assert len(through.events) == 4 and not through.held and not through.halted
        assert parts.store.snapshots.count("hr") == 1 and parts.store.sources.approved() == set()  # spent
    finally:
        await parts.aclose()


async def test_provision_now_reads_one_person_and_is_held_without_halting_the_source(tmp_path, monkeypatch):
    parts, people = linked_parts(tmp_path, 3, max_deprovisions=0)
    try:
        await ingest(parts.sources["hr"], parts.store, parts.gate)
        write(people, *staff(3)[:2], {**staff(3)[2], "status": "terminated"})

        def whole_source(*args: Any) -> None:
            raise AssertionError("provision-now read the whole source's snapshot")

        monkeypatch.setattr(parts.store.snapshots, "of_source", whole_source)
        shown: list[tuple[str, Any]] = []
        done = await provision_one(parts, "hr:2", lambda step, value: shown.append((step, value)))
        assert done.outcome is None and done.note == (
            "held back by the safety limits: 1 workers would be deprovisioned on demand (max_deprovisions: 0)"
        )
        assert shown[-1] == ("note", done.note)
        assert "hr" not in {s for s, state in parts.store.sources.states().items() if state.halted}
        assert parts.store.snapshots.get("hr:2").status == "active"  # nothing committed
    finally:
        await parts.aclose()


async def test_due_work_passes_the_same_gate_and_its_rows_wait_for_a_resume(tmp_path, caplog):
    parts, people = linked_parts(tmp_path, 5, max_deprovisions=2)
    soon = datetime.now(UTC) + timedelta(days=3)
    try:
        write(people, *[{**p, "termination_date": soon.date().isoformat()} for p in staff(4)], *staff(5)[4:])
        await ingest(parts.sources["hr"], parts.store, parts.gate)  # updates with a disable for later: through
        assert not parts.store.sources.states()["hr"].halted
        with parts.store.unit() as s:
            s.add_all(
                Deferred(worker_id=f"hr:{i}", target="app", action="disable", effective_at=soon) for i in range(4)
            )
        queued = parts.store.outbox.pending_count()
        later = FixedClock(soon + timedelta(days=1))

        with caplog.at_level(logging.ERROR, logger="provisioner.engine"):
            assert fire_due(parts.store, parts.gate, later) == []
        state = parts.store.sources.states()["hr"]
        assert state.halted and "4 workers would be deprovisioned by scheduled changes falling due together" in (
            state.reason or ""
        )
        assert "those scheduled changes wait" in caplog.records[-1].getMessage()
        assert len(parts.store.schedule.deferred()) == 4 and parts.store.outbox.pending_count() == queued

        assert parts.store.sources.resume("hr")
        assert len(fire_due(parts.store, parts.gate, later)) == 4
        assert parts.store.schedule.deferred() == [] and parts.store.outbox.pending_count() == queued + 4
        assert parts.store.sources.approved() == set()  # spent on this one check
    finally:
        await parts.aclose()
