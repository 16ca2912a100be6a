"""When applying or recording goes wrong in the pipeline.

An event whose apply raised (a bug, not a target error) becomes a failed outcome, never lost.
Whether outcomes are being recorded is what /readyz, `status` (through the heartbeat) and /metrics
read: a batch that cannot be recorded is retried, loudly — counted, named, and logged at error
level with the number of tries — never a silent loop."""

from __future__ import annotations

import logging
import time

from provisioner.engine.contracts.events import WorkerEvent
from provisioner.engine.contracts.records import EventOutcome
from provisioner.engine.runtime.apply import failed_event

log = logging.getLogger("provisioner.pipeline")


class RecordingHealth:
    def __init__(self) -> None:
        self.progress_at = time.monotonic()  # the last outcome recorded (or event handed over)
        self.failures = 0
        self.error: str | None = None  # why the last try failed; None once a batch is recorded
        self.repeats = 0  # outcomes another engine (or an earlier try) had recorded already

    def progress(self) -> None:
        self.progress_at = time.monotonic()

    def recorded(self, repeats: int) -> None:
        self.error = None
        self.progress()
        if repeats:
            self.repeats += repeats
            log.info("%d outcomes were recorded already (by another engine); kept as they were", repeats)

    def failed(self, exc: Exception, waiting: int) -> None:
        self.failures += 1
        self.error = f"{type(exc).__name__}: {str(exc).splitlines()[0][:300] if str(exc) else ''}"
        log.error(
            "could not record %d outcomes (%d failed tries so far): %s; trying again in a second",
            waiting,
            self.failures,
            self.error,
        )


def internal_error(ev: WorkerEvent, exc: Exception) -> EventOutcome:
    log.error(
        "applying event %s failed unexpectedly",
        ev.id,
        extra={"event_id": ev.id, "worker_id": ev.subject},
        exc_info=exc,
    )
    kind = type(exc).__name__
    error, summary = f"{kind}: {exc}", f"internal error: {kind}"
    return failed_event(ev, "apply", "internal error", error, summary=summary, transient=True)
