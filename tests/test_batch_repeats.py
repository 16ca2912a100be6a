"""An outcome another engine recorded first (it applied the same event after a rebalance) is that
engine's to count: this engine's batch report (metrics, the DLQ copy of failures) holds only the
outcomes its own recording wrote. Store on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest

from provisioner.engine.contracts.records import EventOutcome, LogEntry
from provisioner.engine.runtime.apply import BatchReport
from provisioner.engine.runtime.pipeline import Pipeline
from provisioner.engine.runtime.usecases.apply import record
from provisioner.engine.store import Store
from tests.test_handover import _events, _until, _Writer

pytestmark = pytest.mark.fast


class _FailingWriter(_Writer):
    """Every event's write fails: each outcome is a failure for the DLQ."""

    async def apply_event(self, planned):  # type: ignore[no-untyped-def]
        outcome = await super().apply_event(planned)
        ev = outcome.event
        outcome.failed = True
        entry = LogEntry(event_id=ev.id, worker_id=ev.subject, target="app", action="create", result="failure")
        outcome.log.append(entry)
        return outcome


async def test_a_batch_report_counts_only_outcomes_this_engine_recorded(store_url: str) -> None:
    store = Store(store_url)
    first, _, other = _events()  # two workers: both run at once
    store.outbox.add([first, other])  # as the poll wrote them
    writer = _FailingWriter()
    writer.gate.clear()
    reports: list[BatchReport] = []

    async def on_flush(report: BatchReport) -> None:
        reports.append(report)

    pipeline = Pipeline(writer, store, flush_interval=0.01, on_flush=on_flush)  # type: ignore[arg-type]
    await pipeline.submit([first, other])
    await _until(lambda: len(writer.started) == 2, "both events to be applying")
    record(store, [EventOutcome(first.id, first)])  # another engine recorded `first` meanwhile
    writer.gate.set()
    await pipeline.drain(10)
    assert sum(r.failed for r in reports) == 1
    assert [event.id for r in reports for event, _ in r.failures] == [other.id]  # the DLQ copy
    assert sum(r.actions["create:failure"] for r in reports) == 1
    assert pipeline.health.repeats == 1
    await pipeline.aclose()
    store.close()
