"""Gather concurrent single calls into batch calls, as Kafka producers do with `linger.ms`.

Callers keep a one-item API (`await coalescer.submit(item)`); the coalescer waits a few
milliseconds for company and sends what it has as one batch — at once when the batch is full.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

Item = TypeVar("Item")
Answer = TypeVar("Answer")


class Coalescer(Generic[Item, Answer]):
    def __init__(
        self,
        send: Callable[[list[Item]], Awaitable[list[Answer]]],
        *,
        max_items: int,
        linger: float = 0.005,
        serial: bool = False,
    ):
        self.send = send
        self.max_items = max(1, max_items)
        self.linger = linger
        # serial: one batch in flight at a time; what arrives meanwhile goes out together right after
        # (for writes to one resource, which would conflict with each other anyway)
        self.serial = serial
        self._in_flight = False
        self._queue: list[tuple[Item, asyncio.Future[Answer]]] = []
        self._timer: asyncio.TimerHandle | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def submit(self, item: Item) -> Answer:
        future: asyncio.Future[Answer] = asyncio.get_running_loop().create_future()
        self._queue.append((item, future))
        if len(self._queue) >= self.max_items:
            self._flush()
        elif self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(self.linger, self._flush)
        return await future

    def _flush(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self.serial:
            if not self._in_flight and self._queue:
                batch, self._queue = self._queue[: self.max_items], self._queue[self.max_items :]
                self._in_flight = True
                self._start(batch)
            return
        while self._queue:
            batch, self._queue = self._queue[: self.max_items], self._queue[self.max_items :]
            self._start(batch)

    def _start(self, batch: list[tuple[Item, asyncio.Future[Answer]]]) -> None:
        task = asyncio.create_task(self._send(batch))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _send(self, batch: list[tuple[Item, asyncio.Future[Answer]]]) -> None:
        try:
            await self._deliver(batch)
        finally:
            if self.serial:
                self._in_flight = False
                self._flush()

    async def _deliver(self, batch: list[tuple[Item, asyncio.Future[Answer]]]) -> None:
        try:
            answers = await self.send([item for item, _ in batch])
            if len(answers) != len(batch):
                raise RuntimeError(f"a batch of {len(batch)} got {len(answers)} answers")
        except Exception as exc:  # every caller learns what happened to its item
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc)
            return
        for (_, future), answer in zip(batch, answers, strict=True):
            if not future.done():
                future.set_result(answer)
