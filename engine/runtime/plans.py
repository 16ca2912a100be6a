"""Planning for the pipeline: one store read per batch (its workers' links, those of the managers
their plans name, and their approved grants), then each event planned from it, laid under the links
events applied here moved since (runtime/overlay.py)."""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

from provisioner.engine.contracts.events import WorkerEvent
from provisioner.engine.contracts.records import Link, LinkKey
from provisioner.engine.kit import tracing
from provisioner.engine.runtime.apply import Applier, Known, Planned
from provisioner.engine.runtime.health import internal_error
from provisioner.engine.runtime.held import read_retrying
from provisioner.engine.runtime.overlay import LinkOverlay
from provisioner.engine.store import Store


class Read(NamedTuple):
    """What a batch's plans start from."""

    links: dict[LinkKey, Link]
    approved: dict[str, set[str]]  # worker id → keys of their approved grants
    known: Known  # `links` under those moved here since (a live view: one for the batch)


class Plans:
    def __init__(
        self,
        applier: Applier,
        store: Store,
        overlay: LinkOverlay,
        approved: Callable[[list[str]], dict[str, set[str]]] | None,
    ):
        self.applier = applier
        self.store = store
        self.overlay = overlay
        # The approved grants of a batch's workers (Parts.approved), read with its links; None: no
        # grant ever waits for approval here.
        self.approved = approved

    async def read(self, events: list[WorkerEvent]) -> Read:
        if not events:
            return Read({}, {}, self.overlay.over({}))
        links = await read_retrying(self.store.links.for_workers, self.applier.links_needed(events))
        if self.approved is None:
            return Read(links, {}, self.overlay.over(links))
        approved = await read_retrying(self.approved, sorted({ev.subject for ev in events}))
        return Read(links, approved, self.overlay.over(links))

    def plan(self, ev: WorkerEvent, read: Read) -> Planned:
        with tracing.handling("plan", ev) as span:
            try:
                planned = self.applier.plan_event(ev, read.known, read.approved.get(ev.subject, ()))
            except Exception as exc:  # a bug, not a policy error: the event fails alone, never lost
                return Planned(internal_error(ev, exc), [], {})
            tracing.planned(span, planned.actions)
            return planned
