"""`type: file` — a CSV or JSON export whose columns/keys are Worker field names.

The quickest way to try the engine, and how tests feed exact data.
"""

from __future__ import annotations

import codecs
from collections.abc import Iterable, Iterator
from itertools import chain
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from provisioner.engine.config import describe
from provisioner.engine.contracts.models import Worker
from provisioner.engine.contracts.protocols import (
    Quarantined,
    RecordStream,
    SourceError,
    SourceRead,
    normalize_records,
)
from provisioner.sources.file.streaming import STREAM_FORMAT, Item, counted, iter_records
from provisioner.sources.values import as_written

_FIELDS = set(Worker.model_fields) - {"id", "source", "remote_id", "custom"}


class FileSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    path: Path
    id_field: str = "remote_id"
    encoding: str = "utf-8"

    @field_validator("encoding")
    @classmethod
    def _known(cls, value: str) -> str:
        try:
            codecs.lookup(value)
        except LookupError:
            raise ValueError(f"unknown encoding {value!r} (e.g. utf-8, cp1252, latin-1)") from None
        return value


class FileSource:
    path_settings = ("path",)  # relative to the config file's directory
    streams = True  # its read is its stream, held whole (engine/contracts Streams)

    def __init__(self, name: str, settings: FileSettings):
        self.name = name
        self.settings = settings

    @classmethod
    def from_settings(cls, name: str, settings: dict[str, Any]) -> FileSource:
        return cls(name, FileSettings.model_validate(settings))

    @classmethod
    def problems(cls, raw: dict[str, Any], known: Iterable[str] = ()) -> list[tuple[tuple[Any, ...], str]]:
        try:
            FileSettings.model_validate(raw)
        except ValidationError as exc:
            return describe(FileSettings, exc.errors(), known)
        return []

    def _fail(self, why: str) -> SourceError:
        return SourceError(f"source {self.name}: {self.settings.path} {why}")

    def _items(self) -> Iterator[Item]:
        return iter_records(self.settings.path, self.settings.encoding, self.settings.id_field, self._fail)

    def _records(self) -> tuple[list[dict[str, Any]], list[Quarantined]]:
        records: list[dict[str, Any]] = []
        bad: list[Quarantined] = []
        for item in self._items():
            if isinstance(item, Quarantined):
                bad.append(item)
            else:
                records.append(item)
        return records, bad

    @staticmethod
    def _to_worker(record: dict[str, Any]) -> dict[str, Any]:
        # Unknown columns land in `custom` instead of failing the record.
        fields: dict[str, Any] = {}
        custom: dict[str, Any] = {}
        for key, value in record.items():  # one pass: a 100,000-row file goes through here
            if key in _FIELDS:
                fields[key] = value
            elif key not in _RESERVED and value not in ("", None):
                custom[key] = value
        if isinstance(record.get("custom"), dict):
            custom.update((k, v) for k, v in record["custom"].items() if v not in ("", None))
        fields["custom"] = custom
        return as_written(fields)

    async def stream(self, cursor: dict[str, Any]) -> RecordStream:
        """The records one at a time, in the thread that diffs them: a million-person export is
        never held as text, records and Workers at once. A file that cannot be read as a whole
        (missing, empty, no header) fails here, before any record; a fault further in (JSON that
        breaks off) fails the poll while it is diffed, which then writes nothing."""
        items = self._items()
        first = next(items, None)
        out: dict[str, Any] = {}  # the cursor: filled in once the records are all read
        found = counted(items if first is None else chain((first,), items), out)
        fingerprint = f"file|{self.settings.id_field}|{STREAM_FORMAT}"
        return RecordStream(self.name, found, self._to_worker, self.settings.id_field, fingerprint, cursor=out)

    async def read(self, cursor: dict[str, Any]) -> SourceRead:
        records, bad = self._records()
        read = normalize_records(self.name, records, self._to_worker, id_key=self.settings.id_field)
        read.quarantined = bad + read.quarantined
        read.cursor = {"records": len(records) + len(bad)}
        return read

    async def fetch_one(self, remote_id: str) -> SourceRead:
        read = await self.read({})
        mine = [w for w in read.workers if w.remote_id == remote_id]
        held = [q for q in read.quarantined if q.remote_id == remote_id]
        return SourceRead(workers=mine, quarantined=held, complete=False, gone=[] if mine or held else [remote_id])

    async def check(self) -> str:
        records, bad = self._records()
        return f"{len(records)} records readable" + (f", {len(bad)} not" if bad else "")

    async def aclose(self) -> None:
        return None


_RESERVED = frozenset({"id", "remote_id", "source", "custom"})
