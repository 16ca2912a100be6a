"""`type: rest` — any HR system with a JSON API, described in the config instead of code.

A URL, an auth block, a paging style, where the records sit (JMESPath) and a Jinja2 mapping from
each `record` to Worker fields. The paging styles and auth schemes are the shared ones the
vendor connectors use (`engine.kit.paging`, `engine.kit.auth`). See the README for a full example.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any, Literal

import jmespath
from pydantic import BaseModel, ConfigDict, Field, field_validator

from provisioner.engine.contracts.models import Worker
from provisioner.engine.kit.paging import NoPaging, Paging
from provisioner.engine.kit.templating import Template
from provisioner.sources.base import HttpSource, HttpSourceSettings, iso_utc
from provisioner.sources.values import as_written


class Incremental(BaseModel):
    model_config = ConfigDict(extra="forbid")
    param: str  # the query parameter taking the start of the window, e.g. updated_since
    format: Literal["iso", "epoch", "epoch_ms", "date"] = "iso"


class RestSourceSettings(HttpSourceSettings):
    path: str  # the listing, relative to base_url
    params: dict[str, str] = Field(default_factory=dict)
    paging: Paging = Field(default_factory=NoPaging)
    id: str = "id"  # JMESPath to the record's stable id
    mapping: dict[str, str]  # Worker field -> Jinja2 template over `record`
    record_path: str | None = None  # one record by id, for webhooks: /people/{id}
    record_item: str = "@"  # JMESPath to the record in that answer
    since: Incremental | None = None  # without it every read is full

    @field_validator("mapping")
    @classmethod
    def _known_fields(cls, mapping: dict[str, str]) -> dict[str, str]:
        known = set(Worker.model_fields) - {"id", "source", "remote_id", "custom"}
        if unknown := set(mapping) - known:
            raise ValueError(f"not Worker fields: {', '.join(sorted(unknown))} (known: {', '.join(sorted(known))})")
        for source in mapping.values():
            Template(source)  # raises TemplateError (a ValueError) naming the problem
        return mapping


def _format(when: datetime, style: str) -> str:
    return {
        "iso": lambda: iso_utc(when),
        "epoch": lambda: str(int(when.timestamp())),
        "epoch_ms": lambda: str(int(when.timestamp() * 1000)),
        "date": lambda: when.date().isoformat(),
    }[style]()


class RestSource(HttpSource):
    vendor = "the REST API"
    settings_model = RestSourceSettings
    requires_auth = False  # some internal APIs take none
    id_key = "_id"

    def __init__(self, name: str, settings: RestSourceSettings):
        super().__init__(name, settings)
        self.rest = settings
        self.settings.incremental = settings.since is not None and settings.incremental
        self.templates = {k: Template(v) for k, v in settings.mapping.items()}

    def _with_id(self, record: dict[str, Any]) -> dict[str, Any]:
        return {**record, "_id": jmespath.search(self.rest.id, record)}

    async def records(self, since: datetime | None) -> AsyncIterator[dict[str, Any]]:
        params = dict(self.rest.params)
        if since is not None and self.rest.since:
            params[self.rest.since.param] = _format(since, self.rest.since.format)
        async for page in self.pages(self.rest.path, self.rest.paging, params):
            for record in page:
                yield self._with_id(record)

    async def record(self, remote_id: str) -> dict[str, Any] | None:
        if not self.rest.record_path:
            raise ValueError(f"source {self.name}: set record_path to fetch one record")
        found = await self.get_json(self.rest.record_path.format(id=remote_id), missing_ok=True)
        record = jmespath.search(self.rest.record_item, found) if found is not None else None
        return self._with_id(record) if record else None

    def to_worker(self, record: dict[str, Any]) -> dict[str, Any]:
        return as_written({field_: template.render(record=record) for field_, template in self.templates.items()})
