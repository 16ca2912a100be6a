"""Streamed reads (issue 26): a file's records flow through digest → diff → write in chunks; a
Worker is built only for a record that is new or reads differently; what needs the whole read (an
id twice, a shared work email) is judged as before; a file that breaks off changes nothing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from provisioner.engine.contracts.protocols import RecordStream, SourceError
from provisioner.engine.runtime.usecases import ingest_stream
from provisioner.engine.runtime.usecases.ingest import ingest
from provisioner.engine.runtime.wiring import Parts
from provisioner.sources.adp.connector import AdpSource
from provisioner.sources.ashby.connector import AshbySource
from provisioner.sources.bamboohr.connector import BambooHRSource
from provisioner.sources.file import streaming
from provisioner.sources.file.streaming import iter_records
from tests.conftest import make_config

pytestmark = pytest.mark.fast


def person(i: int, **changes: str) -> dict[str, str]:
    name = {"first_name": f"F{i}", "last_name": f"L{i}"}
    return {"remote_id": str(i), **name, "work_email": f"p{i}@x.example", **changes}


def parts_for(tmp_path: Path, rows: list[dict[str, str]], url: str | None = None) -> tuple[Parts, Path]:
    path = tmp_path / "people.json"
    write_rows(path, rows)
    source = {"name": "hr", "type": "file", "path": str(path)}
    config = make_config(url or f"sqlite:///{tmp_path / 's.db'}", "http://127.0.0.1:9/scim", source, policies=[])
    return Parts(config), path


def write_rows(path: Path, rows: list[dict[str, str]]) -> None:
    if path.suffix == ".jsonl":
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    elif path.suffix == ".csv":
        names = list(rows[0])
        path.write_text(",".join(names) + "\n" + "".join(",".join(r[n] for n in names) + "\n" for r in rows))
    else:
        path.write_text(json.dumps(rows, indent=1))


@pytest.mark.parametrize("suffix", [".json", ".jsonl", ".csv"])
def test_every_shape_reads_record_by_record_across_block_ends(tmp_path, monkeypatch, suffix):
    monkeypatch.setattr(streaming, "BLOCK", 7)  # every record straddles a block end
    rows = [person(i, title="a\u00e9b" * (i % 4)) for i in range(40)]
    path = tmp_path / f"people{suffix}"
    write_rows(path, rows)
    assert list(iter_records(path, "utf-8", "remote_id", SourceError)) == rows


@pytest.mark.parametrize(
    "text", ['[{"remote_id": "1"},', '[{"remote_id": "1"} {"remote_id": "2"}]', '[{"remote_id": "1"},]', "[1]"]
)
def test_a_json_array_that_is_not_one_is_refused_in_one_line(tmp_path, monkeypatch, text):
    monkeypatch.setattr(streaming, "BLOCK", 5)
    path = tmp_path / "people.json"
    path.write_text(text)
    with pytest.raises(SourceError, match=r"is not valid JSON \(line 1, column \d+\)|must hold a list of objects"):
        list(iter_records(path, "utf-8", "remote_id", SourceError))


async def test_an_unchanged_poll_builds_no_worker_and_a_change_builds_one(tmp_path, store_url, monkeypatch):
    parts, path = parts_for(tmp_path, [person(i) for i in range(50)], store_url)
    built: list[str] = []
    worker = RecordStream.worker
    monkeypatch.setattr(RecordStream, "worker", lambda self, r: built.append(r["remote_id"]) or worker(self, r))
    try:
        first = await ingest(parts.sources["hr"], parts.store, parts.gate)
        assert first.event_count == 50 and first.seen == 50 and len(built) == 50
        built.clear()
        again = await ingest(parts.sources["hr"], parts.store, parts.gate)
        assert again.event_count == 0 and again.seen == 50 and built == []
        write_rows(path, [person(i, title="CTO") if i == 7 else person(i) for i in range(49)])  # 49 leaves
        moved = await ingest(parts.sources["hr"], parts.store, parts.gate)
        assert built == ["7"]
        assert sorted((e.type.value, e.subject, tuple(e.data.changed)) for e in moved.events) == [
            ("worker.removed", "hr:49", ()),
            ("worker.updated", "hr:7", ("title",)),
        ]
        assert moved.removals == ["hr:49"] and parts.store.snapshots.count("hr") == 49
        assert parts.store.snapshots.get("hr:7").title == "CTO"  # type: ignore[union-attr]
    finally:
        await parts.aclose()


async def test_a_record_that_reads_differently_but_means_the_same_makes_no_event(tmp_path):
    parts, path = parts_for(tmp_path, [person(1), person(2)])
    try:
        await ingest(parts.sources["hr"], parts.store, parts.gate)
        write_rows(path, [{**person(1), "title": "  "}, person(2)])  # a blank is None either way
        same = await ingest(parts.sources["hr"], parts.store, parts.gate)
        assert same.event_count == 0 and same.seen == 2
    finally:
        await parts.aclose()


async def test_an_id_twice_in_a_streamed_read_is_held_back_as_in_a_whole_read(tmp_path, store_url):
    parts, path = parts_for(tmp_path, [person(1), person(2), person(3)], store_url)
    try:
        await ingest(parts.sources["hr"], parts.store, parts.gate)
        write_rows(path, [person(1), person(2, title="x"), person(3), person(2, title="y")])
        result = await ingest(parts.sources["hr"], parts.store, parts.gate)
        assert result.event_count == 0 and not result.removals
        assert sorted(q.reason for q in result.quarantined) == ["id appears 2 times in one read"] * 2
        assert parts.store.snapshots.get("hr:2").title is None  # type: ignore[union-attr]
    finally:
        await parts.aclose()


async def test_a_work_email_an_unchanged_person_holds_is_contested_as_before(tmp_path, store_url):
    parts, path = parts_for(tmp_path, [person(1), person(2)], store_url)
    try:
        await ingest(parts.sources["hr"], parts.store, parts.gate)
        write_rows(path, [person(1), person(2, work_email="p1@x.example")])  # 2 takes 1's address
        result = await ingest(parts.sources["hr"], parts.store, parts.gate)
        # Nobody holds an account, so neither holds the address: both wait (the whole read's rule).
        assert sorted((q.remote_id, q.reason) for q in result.quarantined) == [
            ("1", "work_email is shared by hr:2"),
            ("2", "work_email is shared by hr:1"),
        ]
        assert result.event_count == 0
    finally:
        await parts.aclose()


async def test_a_file_that_breaks_off_midway_changes_nothing(tmp_path, store_url, monkeypatch):
    monkeypatch.setattr(streaming, "BLOCK", 64)
    monkeypatch.setattr(ingest_stream, "CHUNK", 3)  # some chunks are written before the fault
    parts, path = parts_for(tmp_path, [person(i) for i in range(10)], store_url)
    try:
        await ingest(parts.sources["hr"], parts.store, parts.gate)
        write_rows(path, [person(i, title="new") for i in range(20)])
        path.write_text(path.read_text()[:-40])
        with pytest.raises(SourceError, match="is not valid JSON"):
            await ingest(parts.sources["hr"], parts.store, parts.gate)
        assert parts.store.snapshots.count("hr") == 10
        assert parts.store.snapshots.get("hr:1").title is None  # type: ignore[union-attr]
        assert "not valid JSON" in (parts.store.sources.states()["hr"].failing or "")
    finally:
        await parts.aclose()


def test_a_source_with_its_own_read_is_read_through_it_not_streamed_past_it():
    # ADP acknowledges queue messages and Ashby keeps a syncToken in their own read(): a streamed
    # read skipped both (a committed poll never deleted ADP's message).
    assert (AdpSource.streams, AshbySource.streams, BambooHRSource.streams) == (False, False, True)
