"""`type: file` — a CSV or JSON export whose columns/keys are Worker field names.

The quickest way to try the engine, and how tests feed exact data.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from provisioner.engine.config import describe
from provisioner.engine.contracts.models import Worker
from provisioner.engine.contracts.protocols import Quarantined, SourceError, SourceRead, normalize_records
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

    def _text(self) -> str:
        """The whole file, decoded; bytes that do not decode are kept as lone surrogates so that a
        CSV row holding them can be quarantined on its own."""
        path = self.settings.path
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            raise self._fail("does not exist") from None
        except OSError as exc:
            raise self._fail(f"cannot be read ({exc.strerror or type(exc).__name__})") from None
        # utf-8-sig: a byte-order mark (Excel writes one) is not part of the first column's name.
        encoding = "utf-8-sig" if codecs.lookup(self.settings.encoding).name == "utf-8" else self.settings.encoding
        text = raw.decode(encoding, errors="surrogateescape")
        if not text.strip():
            raise self._fail("is empty")
        return text

    def _records(self) -> tuple[list[dict[str, Any]], list[Quarantined]]:
        text = self._text()
        if self.settings.path.suffix.lower() == ".json":
            return self._json(text), []
        return self._csv(text)

    def _json(self, text: str) -> list[dict[str, Any]]:
        if _undecodable(text):
            raise self._fail(f"is not valid {self.settings.encoding} text")
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise self._fail(f"is not valid JSON (line {exc.lineno}, column {exc.colno})") from None
        if isinstance(data, dict):
            data = data.get("workers", [])
        if not isinstance(data, list) or not all(isinstance(r, dict) for r in data):
            raise self._fail("must hold a list of objects or {'workers': [...]}")
        return data

    def _csv(self, text: str) -> tuple[list[dict[str, Any]], list[Quarantined]]:
        reader = csv.DictReader(io.StringIO(text, newline=""))
        if reader.fieldnames is None or _undecodable("".join(reader.fieldnames)):
            raise self._fail("has no readable header row")
        records, bad = [], []
        clean = not _undecodable(text)  # the usual case: no row needs looking at
        for row in reader:
            if clean or not any(_undecodable(v) for v in row.values() if isinstance(v, str)):
                records.append(row)
                continue
            remote_id = row.get(self.settings.id_field)
            readable = remote_id if isinstance(remote_id, str) and remote_id and not _undecodable(remote_id) else None
            why = f"line {reader.line_num}: bytes that are not valid {self.settings.encoding} (set `encoding:`)"
            bad.append(Quarantined(readable, why, line=reader.line_num))
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

# Bytes the encoding could not decode, kept as lone surrogates by errors="surrogateescape".
_ESCAPED_BYTE = re.compile("[\udc80-\udcff]")


def _undecodable(value: str) -> bool:
    """True when `value` holds bytes the encoding could not decode (a regex scan: a 100,000-person
    export is tens of megabytes, too many characters for a Python-level loop)."""
    return _ESCAPED_BYTE.search(value) is not None
