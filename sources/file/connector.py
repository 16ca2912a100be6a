"""`type: file` — a CSV or JSON export whose columns/keys are Worker field names.

The quickest way to try the engine, and how tests feed exact data.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from provisioner.engine.config import describe
from provisioner.engine.contracts.models import Worker
from provisioner.engine.contracts.protocols import SourceRead, normalize_records

_FIELDS = set(Worker.model_fields) - {"id", "source", "remote_id", "custom"}


class FileSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    path: Path
    id_field: str = "remote_id"


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

    def _records(self) -> list[dict[str, Any]]:
        path = self.settings.path
        if not path.exists():
            raise FileNotFoundError(f"source {self.name}: file {path} does not exist")
        if path.suffix.lower() == ".json":
            data = json.loads(path.read_text(encoding="utf-8"))
            if isinstance(data, dict):
                data = data.get("workers", [])
            if not isinstance(data, list):
                raise ValueError(f"source {self.name}: {path} must hold a list of objects or {{'workers': [...]}}")
            return data
        with path.open(newline="", encoding="utf-8-sig") as handle:
            return list(csv.DictReader(handle))

    @staticmethod
    def _to_worker(record: dict[str, Any]) -> dict[str, Any]:
        # Unknown columns land in `custom` instead of failing the record.
        fields = {k: v for k, v in record.items() if k in _FIELDS}
        custom = {
            k: v for k, v in record.items() if k not in _FIELDS and k not in ("id", "remote_id", "source", "custom")
        }
        if isinstance(record.get("custom"), dict):
            custom.update(record["custom"])
        return {**fields, "custom": {k: v for k, v in custom.items() if v not in ("", None)}}

    async def read(self, cursor: dict[str, Any]) -> SourceRead:
        records = self._records()
        read = normalize_records(self.name, records, self._to_worker, id_key=self.settings.id_field)
        read.cursor = {"records": len(records)}
        return read

    async def fetch_one(self, remote_id: str) -> SourceRead:
        read = await self.read({})
        mine = [w for w in read.workers if w.remote_id == remote_id]
        return SourceRead(workers=mine, complete=False, gone=[] if mine else [remote_id])

    async def check(self) -> str:
        return f"{len(self._records())} records readable"

    async def aclose(self) -> None:
        return None
