"""Writeback: a value an app assigned (the work email, the username) goes back to the person's HR
record, as `writeback:` in the config says (docs/writeback.md).

It runs as an applied event ends (and, for events that end without a task, over their batch just
before it is recorded: runtime/pipeline.py), and adds to the event's outcome: a log entry whose
target is `writeback:<source>`, a failure there (retried durably like a target write:
store/failures.py) or the target settled (which heals an earlier failure). So the write and the
account it came from are recorded in one transaction; a crash before it re-applies the event, and
the writeback, being idempotent, writes nothing twice.

Idempotent: nothing is written when the HR record already holds the value. When HR takes it, the
account's link is moved to what the app holds at the paths that value feeds, so the next poll,
which sees the new value in HR (`worker.updated`), plans nothing for the app: no change loop.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from provisioner.engine.config import WritebackConfig
from provisioner.engine.contracts.events import RETRY_SOURCE, WorkerEvent
from provisioner.engine.contracts.models import Account, Worker, elapsed_ms
from provisioner.engine.contracts.protocols import (
    ReadsAccount,
    Source,
    SourceError,
    Target,
    WritebackRefused,
    WritesBack,
)
from provisioner.engine.contracts.records import EventOutcome, Link, LinkKey, LogEntry
from provisioner.engine.kit.templating import Template, TemplateError
from provisioner.rules.planner import TargetSpec

log = logging.getLogger("provisioner.writeback")

PREFIX = "writeback:"
ACTION = "writeback"


def writeback_target(source: str) -> str:
    """The name a writeback to this source goes by wherever a target's would: log, failures."""
    return PREFIX + source


@dataclass(frozen=True)
class Rule:
    source: str
    field: str
    target: str
    value: Template

    @classmethod
    def of(cls, config: WritebackConfig) -> Rule:
        return cls(config.source, config.field, config.from_.target, Template(config.from_.value))


@dataclass(frozen=True)
class Pending:
    """One writeback due: the values to write to one person's HR record, and where they come from."""

    worker: Worker
    values: dict[str, str]
    sources: list[tuple[Link, Account]]  # each account a written value came from, with its link


LinksOf = Callable[[list[str]], dict[LinkKey, Link]]  # worker ids → their stored links


class Writebacks:
    """The writeback rules of one config, with the sources, targets and mappings they need."""

    def __init__(
        self,
        rules: Iterable[WritebackConfig],
        sources: dict[str, Source],
        targets: dict[str, Target],
        specs: dict[str, TargetSpec],
        concurrency: int = 8,
    ):
        self.rules = [Rule.of(rule) for rule in rules]
        for rule in self.rules:
            source = sources.get(rule.source)
            if not isinstance(source, WritesBack):
                raise ValueError(f"writeback: source {rule.source!r} cannot write values back to its HR system")
            if rule.field not in source.writable:
                raise ValueError(
                    f"writeback: source {rule.source!r} cannot write {rule.field} back to its HR system "
                    f"(it writes {', '.join(sorted(source.writable))})"
                )
            if not isinstance(targets.get(rule.target), ReadsAccount):
                raise ValueError(f"writeback: target {rule.target!r} cannot read an account back to take a value from")
        self.sources, self.targets, self.specs = sources, targets, specs
        self.concurrency = concurrency

    def __bool__(self) -> bool:
        return bool(self.rules)

    def due(self, ev: WorkerEvent, moved: Iterable[str]) -> list[Rule]:
        """The rules to look at after this event: its worker's source writes back, and the account
        a rule reads was created or changed (`moved`: targets whose link moved), or this is a retry."""
        worker = ev.data.worker
        if worker is None or not worker.in_employment:
            return []
        touched = set(moved)
        retry = ev.source == RETRY_SOURCE
        return [r for r in self.rules if r.source == worker.source and (retry or r.target in touched)]

    async def run(self, outcomes: list[EventOutcome], links_of: LinksOf) -> None:
        """Write back what these outcomes call for, adding what happened to each outcome."""
        work = [(o, rules) for o in outcomes if o.event is not None and (rules := self._todo(o))]
        if not work:
            return
        stored = await asyncio.to_thread(links_of, [o.event.subject for o, _ in work if o.event is not None])
        slots = asyncio.Semaphore(self.concurrency)  # per run: a CLI command and the engine have loops of their own
        await asyncio.gather(*(self._one(outcome, rules, stored, slots) for outcome, rules in work))

    def _todo(self, outcome: EventOutcome) -> list[Rule]:
        assert outcome.event is not None
        worker = outcome.event.data.worker
        if worker is None:
            return []
        target = writeback_target(worker.source)
        if target in outcome.settled or any(f.target == target for f in outcome.failures):
            return []  # looked at already: as the event ended, or in an earlier try to record it
        return self.due(outcome.event, (link.target for link in outcome.links))

    async def _one(
        self, outcome: EventOutcome, rules: list[Rule], stored: dict[LinkKey, Link], slots: asyncio.Semaphore
    ) -> None:
        assert outcome.event is not None and outcome.event.data.worker is not None
        worker = outcome.event.data.worker
        links = {t: link for (w, t), link in stored.items() if w == worker.id}
        links.update({link.target: link for link in outcome.links})
        for key in outcome.unlinked:
            links.pop(key[1], None)
        target = writeback_target(worker.source)
        start = time.perf_counter()
        try:
            async with slots:
                pending = await self.pending(worker, rules, links)
                if pending is not None:
                    await self._write(pending)
        except Exception as exc:  # whatever went wrong is this writeback's failure, never the batch's
            transient = isinstance(exc, SourceError) and not isinstance(exc, WritebackRefused)
            error = str(exc) if isinstance(exc, SourceError) else f"{type(exc).__name__}: {exc}"
            outcome.fail(target, ACTION, error, transient)
            outcome.log.append(self._entry(outcome, target, rules, {}, "failure", error, start))
            return
        outcome.settled.append(target)
        if pending is None:
            return
        outcome.log.append(self._entry(outcome, target, rules, pending.values, "success", None, start))
        outcome.links.extend(self._moved(pending))

    async def pending(self, worker: Worker, rules: list[Rule], links: dict[str, Link]) -> Pending | None:
        """What would be written back for this worker now (None: HR already holds it, or there is
        nothing to take it from yet). Reads the accounts; writes nothing (`plan` shows it)."""
        values: dict[str, str] = {}
        read_from: dict[str, tuple[Link, Account]] = {}
        for rule in rules:
            link = links.get(rule.target)
            if link is None:
                continue
            read = await self._read(rule.target, link.account_id)
            if read is None:
                continue
            account, resource = read
            try:
                value = rule.value.render(account=resource)
            except TemplateError as exc:
                raise WritebackRefused(f"writeback value from target {rule.target!r}: {exc}") from None
            if value and not _same(rule.field, value, getattr(worker, rule.field)):
                values[rule.field] = value
                read_from[rule.target] = (link, account)
        if not read_from:
            return None
        return Pending(worker, values, list(read_from.values()))

    async def _read(self, target: str, account_id: str) -> tuple[Account, dict[str, Any]] | None:
        reader = self.targets[target]
        assert isinstance(reader, ReadsAccount)
        return await reader.read_account(account_id)

    async def _write(self, pending: Pending) -> None:
        source = self.sources[pending.worker.source]
        assert isinstance(source, WritesBack)
        await source.write_back(pending.worker.remote_id, pending.values)
        log.info(
            "wrote %s back to %s for %s",
            ", ".join(pending.values),
            pending.worker.source,
            pending.worker.id,
            extra={"worker_id": pending.worker.id, "target": writeback_target(pending.worker.source)},
        )

    def _moved(self, pending: Pending) -> list[Link]:
        """Each account's link at the paths the written values feed, set to what the app holds
        there, so the plan of the HR change that follows finds nothing to do at any of them."""
        updated = pending.worker.model_copy(update=pending.values)
        moved_links = []
        for link, account in pending.sources:
            spec = self.specs.get(link.target)
            if spec is None:
                continue
            try:
                before, after = spec.render(pending.worker), spec.render(updated)
            except ValueError:  # a mapping that cannot render is the plan's to report
                continue
            held = account.attributes
            if moved := {p: v for p, v in after.items() if before.get(p) != v and held.get(p) == v}:
                moved_links.append(link.model_copy(update={"attributes": {**link.attributes, **moved}}))
        return moved_links

    @staticmethod
    def _entry(
        outcome: EventOutcome,
        target: str,
        rules: list[Rule],
        values: dict[str, str],
        result: str,
        error: str | None,
        start: float,
    ) -> LogEntry:
        assert outcome.event is not None
        fields = sorted(values) or sorted({r.field for r in rules})
        return LogEntry(
            event_id=outcome.event_id,
            worker_id=outcome.event.subject,
            target=target,
            action=ACTION,
            reason=f"{', '.join(fields)} from {', '.join(sorted({r.target for r in rules}))}",
            attributes=values,
            result=result,
            error=error,
            duration_ms=elapsed_ms(start),
        )


def _same(field: str, value: str, held: str | None) -> bool:
    """Whether HR holds the value already; an address that differs only in case is the same one."""
    if held is None:
        return False
    return value.casefold() == held.casefold() if field == "work_email" else value == held
