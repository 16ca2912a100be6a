"""Event ids: distinct changes have distinct ids (CloudEvents: source + id is unique for each distinct
event), and one change told twice against the same stored state has one id (a poll that rolled back
and runs again, a preview, provision-now racing a poll).

A record that goes A → B → A → B makes two B changes. Told only against the stored content, both
had one id: the second was dropped as a repeat while the first was in flight, and a redelivered copy
of the first, applied already, was taken for the second one in flight and applied out of order."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import pytest

from provisioner.engine.config import Config
from provisioner.engine.contracts.models import Worker
from provisioner.engine.runtime.poller import diff
from provisioner.engine.runtime.usecases.identity import IdentityRules
from provisioner.engine.runtime.usecases.identity_manual import link, unlink
from provisioner.engine.runtime.usecases.ingest import ingest
from provisioner.engine.runtime.wiring import Parts
from tests.test_stream_ingest import parts_for, person, write_rows

pytestmark = pytest.mark.fast


async def _change(parts: Parts, path: Path, title: str, whole: bool) -> str:
    write_rows(path, [person(1, title=title)])
    result = await ingest(parts.sources["hr"], parts.store, parts.gate, only=["1"] if whole else None)
    [event] = result.events
    return event.id


@pytest.mark.parametrize("whole", [False, True], ids=["streamed", "whole read"])
async def test_a_record_changed_back_and_again_makes_a_new_event_each_time(tmp_path, store_url, whole):
    parts, path = parts_for(tmp_path, [person(1, title="A")], store_url)
    try:
        hired = await _change(parts, path, "A", whole)
        first_b = await _change(parts, path, "B", whole)
        with parts.store.unit() as s:  # the first B is applied and recorded
            assert parts.store.outbox.confirm(s, [first_b]) == {first_b}
        back_to_a = await _change(parts, path, "A", whole)
        second_b = await _change(parts, path, "B", whole)
        assert len({hired, first_b, back_to_a, second_b}) == 4
        # Nothing dropped as a repeat: each change is in flight, in the order it was made.
        assert [row.event_id for row in parts.store.outbox.unpublished(10)] == [hired, back_to_a, second_b]
        # A redelivered copy of the first B is skipped as applied, not taken for the second one.
        assert parts.store.outbox.applied([first_b, second_b]) == {first_b}
        third_b = await _change(parts, path, "A", whole) and await _change(parts, path, "B", whole)
        assert third_b not in {first_b, second_b}
        assert len(parts.store.outbox.unpublished(10)) == 5  # while the second B is still in flight
    finally:
        await parts.aclose()


async def test_one_change_told_twice_against_one_stored_state_has_one_id(tmp_path, store_url):
    parts, path = parts_for(tmp_path, [person(1, title="A"), person(2)], store_url)
    try:
        await ingest(parts.sources["hr"], parts.store, parts.gate)
        write_rows(path, [person(1, title="B"), person(2)])
        source = parts.sources["hr"]
        preview = diff("hr", await source.read({}), parts.store.snapshots.of_source("hr")).events
        stored = parts.store.snapshots.stored("hr:1")
        assert stored is not None
        told = diff("hr", await source.read({}), {"hr:1": stored}).events  # what provision-now tells
        one = [e for e in told if e.subject == "hr:1"]  # (the other one is new against this one snapshot)
        polled = (await ingest(source, parts.store, parts.gate)).events
        assert [e.id for e in preview] == [e.id for e in one] == [e.id for e in polled]
        assert [e.type.value for e in polled] == ["worker.updated"]
    finally:
        await parts.aclose()


async def test_a_person_of_two_records_changed_back_and_again_makes_a_new_event_each_time(tmp_path):
    """A person joined from two records is told as one event, made of its records' changes."""
    files = {name: tmp_path / f"{name}.json" for name in ("ats", "hris")}
    config = Config.model_validate(
        {
            "store": {"url": f"sqlite:///{tmp_path / 's.db'}"},
            "sources": [{"name": name, "type": "file", "path": str(path)} for name, path in files.items()],
            "identity": {"match": ["custom.national_id_hash"]},
        }
    )
    parts, rules = Parts(config), IdentityRules.of(config)
    same = {"custom": {"national_id_hash": "n-1"}}
    write_rows(files["ats"], [{**person(1), **same}])  # type: ignore[list-item]
    try:
        ids = []
        for title in ("A", "B", "A", "B"):
            write_rows(files["hris"], [{**person(7, title=title), **same}])  # type: ignore[list-item]
            for name in ("ats", "hris"):
                result = await ingest(parts.sources[name], parts.store, parts.gate, identity=rules)
                ids += [e.id for e in result.events if name == "hris"]
        assert len(ids) == 4 and len(set(ids)) == 4
        in_flight = [row.event_id for row in parts.store.outbox.unpublished(10)]
        assert in_flight[-4:] == ids
    finally:
        await parts.aclose()


async def test_a_record_linked_by_hand_unlinked_and_linked_again_makes_an_event_each_time(tmp_path):
    later = (date.today() + timedelta(days=60)).isoformat()
    rows = [person(1), {**person(2, status="pending", start_date=later), "department": "Sales"}]
    path = tmp_path / "hr.json"
    write_rows(path, rows)
    config = Config.model_validate(
        {
            "store": {"url": f"sqlite:///{tmp_path / 's.db'}"},
            "sources": [{"name": "hr", "type": "file", "path": str(path)}],
            "identity": {"match": ["custom.national_id_hash"]},
        }
    )
    parts, rules = Parts(config), IdentityRules.of(config)
    try:
        hires = [e.id for e in (await ingest(parts.sources["hr"], parts.store, parts.gate, identity=rules)).events]
        decided: list[str] = []
        for _ in range(2):
            decided += link(parts.store, rules, "hr:1", "hr:2").events
            decided += unlink(parts.store, rules, "hr:2").events
        assert len(decided) == len(set(decided)) and not set(decided) & set(hires)
        in_flight = [row.event_id for row in parts.store.outbox.unpublished(20)]
        assert in_flight == [*hires, *decided]  # each decision in flight, in the order it was made
    finally:
        await parts.aclose()


@pytest.mark.parametrize("whole", [False, True], ids=["streamed", "whole read"])
async def test_a_worker_removed_and_listed_again_as_first_hired_is_a_new_hire(tmp_path, store_url, whole):
    """While the first hire is in flight: its repeat would be dropped, and the removal applied last."""
    parts, path = parts_for(tmp_path, [person(1), person(2)], store_url)
    source, only = parts.sources["hr"], ["1", "2"] if whole else None
    try:
        hired = (await ingest(source, parts.store, parts.gate)).events
        write_rows(path, [person(2)])
        removed = (await ingest(source, parts.store, parts.gate)).events
        assert [e.type.value for e in removed] == ["worker.removed"]
        write_rows(path, [person(1), person(2)])
        departed = parts.store.snapshots.departed("hr", ["hr:1"])
        told = diff("hr", await source.read({}), {}, departed=departed).events  # what provision-now tells
        again = [e for e in (await ingest(source, parts.store, parts.gate, only=only)).events]
        assert [e.id for e in told if e.subject == "hr:1"] == [again[0].id]
        assert [(e.type.value, e.subject) for e in again] == [("worker.hired", "hr:1")]
        assert again[0].id not in {e.id for e in hired}
        in_flight = [row.event_id for row in parts.store.outbox.unpublished(10)]
        assert in_flight == [*(e.id for e in hired), removed[0].id, again[0].id]
        write_rows(path, [person(2)])  # and it leaves, and comes back, once more
        gone_again = (await ingest(source, parts.store, parts.gate)).events
        write_rows(path, [person(1), person(2)])
        back_again = (await ingest(source, parts.store, parts.gate, only=only)).events
        ids = {e.id for e in [*hired, *removed, *again, *gone_again, *back_again]}
        assert len(ids) == 6 and len(parts.store.outbox.unpublished(10)) == 6
    finally:
        await parts.aclose()


async def test_a_late_second_removal_keeps_the_state_a_worker_left_from(tmp_path, store_url):
    """Provision-now of a leaver records its removal after a poll recorded the same one."""
    parts, _ = parts_for(tmp_path, [person(1)], store_url)
    try:
        store = parts.store
        with store.unit() as s:
            store.snapshots.upsert(s, "hr", [Worker(id="hr:1", source="hr", remote_id="1", first_name="F1")])
        with store.unit() as s:
            store.snapshots.remove(s, "hr", ["hr:1"])
        left = store.snapshots.departed("hr", ["hr:1"])
        assert list(left) == ["hr:1"]
        with store.unit() as s:
            store.snapshots.remove(s, "hr", ["hr:1"])  # nothing of it is left to remove
        assert store.snapshots.departed("hr", ["hr:1"]) == left
    finally:
        await parts.aclose()
