"""Ingest tells the store's trouble from the source's: a cursor the store cannot give is the
store's error, raised as it is, and never marks the source as failing."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy.exc import OperationalError

from provisioner.engine.runtime.usecases.ingest import ingest
from tests.test_safety_and_schedule import linked_parts


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
