"""Progress of long work (a first sync of 100,000 people, a reconcile listing as many accounts):
a rich bar on a terminal; otherwise a plain line every few seconds, so that a cron mail or a CI log
shows that the work moves and how fast."""

from __future__ import annotations

import time
from types import TracebackType

from rich.console import Console
from rich.progress import BarColumn, Progress, ProgressColumn, TaskID, TextColumn, TimeElapsedColumn

from provisioner.engine.kit.words import plural
from provisioner.engine.runtime.app import Runtime


class Meter:
    """One piece of work counted in `unit`s; `total` None while unknown (accounts being listed)."""

    def __init__(self, console: Console, what: str, unit: str, total: int | None = None, every: float = 5.0):
        self.console, self.what, self.unit, self.total, self.every = console, what, unit, total, every
        self.done = 0
        self.started = time.monotonic()
        self._said = self.started
        self._bar: Progress | None = None
        self._task: TaskID | None = None

    def __enter__(self) -> Meter:
        if self.console.is_terminal:
            columns: list[ProgressColumn] = [TextColumn("{task.description}")]
            columns += [BarColumn()] if self.total is not None else []
            columns += [TextColumn("{task.fields[count]}"), TextColumn("{task.fields[rate]}"), TimeElapsedColumn()]
            self._bar = Progress(*columns, console=self.console, transient=True)
            self._bar.start()
            self._task = self._bar.add_task(self.what, total=self.total, count="", rate="")
        return self

    def update(self, done: int, total: int | None = None) -> None:
        self.done = done
        self.total = total if total is not None else self.total
        now = time.monotonic()
        if self._bar is not None and self._task is not None:
            self._bar.update(self._task, completed=done, total=self.total, count=self.count(), rate=self.rate())
        elif now - self._said >= self.every:
            self._said = now
            self.console.print(f"{self.what}: {self._so_far()}", highlight=False)

    def count(self) -> str:
        if self.done == 0 and self.total is None:
            return ""  # nothing counted yet (a file read whole): the elapsed time says it moves
        counted = self.done if self.total is None else self.total
        of = f" of {self.total:,}" if self.total is not None else ""
        return f"{self.done:,}{of} {plural(counted, self.unit).split(' ', 1)[1]}"

    def rate(self) -> str:
        if self.done == 0:
            return ""
        elapsed = max(time.monotonic() - self.started, 1e-6)
        return f"{self.done / elapsed:,.0f}/s"

    def _so_far(self) -> str:
        elapsed = f"{time.monotonic() - self.started:.0f}s"
        return ", ".join(part for part in (self.count(), self.rate(), elapsed) if part)

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        if self._bar is not None:
            self._bar.stop()
        if kind is None and time.monotonic() - self.started >= self.every:
            self.console.print(f"{self.what}: done, {self._so_far()}", highlight=False)


async def applying(console: Console, runtime: Runtime, timeout: float, at_least: int = 0) -> None:
    """Until every event in the outbox is applied, saying how many of how many and how fast."""
    total = max(at_least, runtime.store.outbox.pending_count())
    with Meter(console, "applying", "event", total) as meter:
        await runtime.wait_idle(timeout, lambda pending: meter.update(max(total - pending, 0)))
