"""The pipeline's side of a rebalance: events of partitions this engine lost.

An event not started yet is dropped (its task cancelled while it waits for its worker's previous
event or for a slot; the partition's new owner applies it); one already running goes on and is
recorded when it finishes, its claim keeping the new owner from applying it again. The claims of
dropped events are released by the caller (`take_dropped`), so the new owner need not wait for
them to lapse."""

from __future__ import annotations

import asyncio


class Handover:
    def __init__(self) -> None:
        self._revoked: set[str] = set()
        self._running: set[str] = set()  # applying now: never cancelled
        self._tasks: dict[str, asyncio.Task[None]] = {}  # per event queued or running
        self._dropped: list[str] = []  # dropped events whose claims are still to be released

    def queued(self, event_id: str, task: asyncio.Task[None]) -> None:
        self._tasks[event_id] = task

    def start(self, event_id: str) -> bool:
        """Just before an event's writes: False when it is to be dropped instead."""
        if event_id in self._revoked:
            return False
        self._running.add(event_id)
        return True

    def finished(self, event_id: str) -> None:
        self._running.discard(event_id)
        self._tasks.pop(event_id, None)
        self._revoked.discard(event_id)

    def dropping(self, event_id: str) -> bool:
        """A task was cancelled: because its event was revoked before it started (not a shutdown)?"""
        return event_id in self._revoked and event_id not in self._running

    def revoke(self, event_ids: set[str]) -> None:
        self._revoked |= event_ids
        for event_id in event_ids - self._running:
            task = self._tasks.get(event_id)
            if task is not None:
                task.cancel()

    def revoked_among(self, event_ids: set[str]) -> set[str]:
        """Those of these events (in flight here) that a revocation is dropping or finishing."""
        return event_ids & self._revoked

    def keep_claims(self, event_ids: set[str]) -> None:
        """Dropped events this engine takes on again: their claims are not to be released."""
        self._dropped = [event_id for event_id in self._dropped if event_id not in event_ids]

    def dropped(self, event_ids: list[str]) -> None:
        for event_id in event_ids:
            self.finished(event_id)
        self._dropped += event_ids

    def take_dropped(self) -> list[str]:
        """Events dropped since the last call: their claims are to be released."""
        dropped, self._dropped = self._dropped, []
        return dropped

    def give_back(self, event_ids: list[str]) -> None:
        """Claims that could not be released yet: tried again later."""
        self._dropped[:0] = event_ids
