"""Ingest tells the store's trouble from the source's: a cursor the store cannot give is the
store's error, raised as it is, and never marks the source as failing."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import event
from sqlalchemy.exc import OperationalError

from provisioner.engine.runtime.usecases.ingest import ingest
from tests.test_end_to_end import write
from tests.test_safety_and_schedule import linked_parts, staff

pytestmark = pytest.mark.fast


async def test_a_store_that_cannot_give_the_cursor_is_not_a_source_that_cannot_be_read(tmp_path, monkeypatch):
    parts, _ = linked_parts(tmp_path, 2)
    try:

        def locked(*args: Any) -> None:
            raise OperationalError("SELECT cursor", {}, Exception("database is locked"))

        monkeypatch.setattr(parts.store.snapshots, "cursor", locked)
        with pytest.raises(OperationalError):
            await ingest(parts.sources["hr"], parts.store, parts.gate)
        assert "hr" not in parts.store.sources.states() and parts.store.snapshots.count("hr") == 0
    finally:
        await parts.aclose()


async def test_a_webhook_reads_the_snapshots_of_the_people_it_names_not_the_whole_source(tmp_path, monkeypatch):
    parts, people = linked_parts(tmp_path, 10)
    try:
        await ingest(parts.sources["hr"], parts.store, parts.gate)
        write(people, *staff(10)[:4], {**staff(10)[4], "title": "CTO"}, *staff(10)[5:])
        read: list[int] = []
        whole = parts.store.snapshots.of_source

        def counted(*args: Any) -> Any:
            snapshots = whole(*args)
            read.append(len(snapshots))
            return snapshots

        monkeypatch.setattr(parts.store.snapshots, "of_source", counted)
        result = await ingest(parts.sources["hr"], parts.store, parts.gate, only=["4"])
        assert read == [1] and [e.subject for e in result.events] == ["hr:4"]
        assert parts.store.snapshots.get("hr:4").title == "CTO" and parts.store.snapshots.count("hr") == 10
        assert parts.store.sources.states()["hr"].workers == 10  # what `status` says the source holds
    finally:
        await parts.aclose()


async def test_people_sharing_a_work_email_are_read_from_the_store_in_bulk(tmp_path):
    parts, people = linked_parts(tmp_path, 40)
    try:
        await ingest(parts.sources["hr"], parts.store, parts.gate)
        write(people, *[{**p, "work_email": "shared@example.com"} for p in staff(40)])  # a bad import
        statements: list[str] = []
        event.listen(parts.store.engine, "before_cursor_execute", lambda _c, _k, sql, *_: statements.append(sql))
        result = await ingest(parts.sources["hr"], parts.store, parts.gate)
        assert len(result.quarantined) == 40 and result.events == []
        assert sum("FROM snapshot" in s for s in statements) <= 4  # not one query per person
    finally:
        await parts.aclose()
