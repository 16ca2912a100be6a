"""Bus offsets committed by hand, only past what the store has recorded.

The pipeline applies events out of bus order (different workers run concurrently), so an offset
counts as done once its event's outcome is in the store — or at once when the event needed
nothing (already processed, or not an event at all). Per partition the commit is the first
offset not yet done: a consumer that dies has everything after it re-delivered to another member
of the group, and the ids already recorded are skipped there.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable

from provisioner.engine.runtime.ports import Consumer, Partition, Record

log = logging.getLogger("provisioner.offsets")


class Offsets:
    def __init__(self) -> None:
        self._consumer: Consumer | None = None
        self._done: dict[Partition, dict[int, bool]] = {}  # per partition: offset → recorded yet
        self._by_event: dict[str, list[tuple[Partition, int]]] = {}
        self.committed: dict[Partition, int] = {}  # the last offset committed per partition (lag)
        # Partitions being handed over in a rebalance: only outcomes really recorded count as done
        # there, never an event the pipeline dropped for the new owner (it is not in flight either).
        self.revoking: set[Partition] = set()

    @property
    def consumer(self) -> Consumer | None:
        return self._consumer

    def track(self, consumer: Consumer, records: Iterable[Record], event_ids: list[str | None]) -> None:
        """The records of one fetched batch, each with its event id (None: not an event)."""
        self._consumer = consumer
        partitions: dict[tuple[str, int], Partition] = {}  # one per partition, not per record
        for record, event_id in zip(records, event_ids, strict=True):
            key = (record.topic, record.partition)
            partition = partitions.get(key) or partitions.setdefault(key, Partition(*key))
            self._done.setdefault(partition, {})[record.offset] = event_id is None
            if event_id is not None:
                self._by_event.setdefault(event_id, []).append((partition, record.offset))

    def settle(self, needs_recording: Callable[[str], bool]) -> None:
        """Events the pipeline is not waiting on (processed before, or recorded already) are done."""
        self.recorded(
            [
                eid
                for eid, places in list(self._by_event.items())
                if not needs_recording(eid) and not any(p in self.revoking for p, _ in places)
            ]
        )

    def recorded(self, event_ids: Iterable[str]) -> None:
        for event_id in event_ids:
            for partition, offset in self._by_event.pop(event_id, []):
                offsets = self._done.get(partition)
                if offsets is not None and offset in offsets:
                    offsets[offset] = True

    def revoke(self, partitions: Iterable[Partition]) -> set[str]:
        """Partitions about to be handed over; returns the ids of their events not yet done."""
        lost = set(partitions)
        self.revoking |= lost
        return {eid for eid, places in self._by_event.items() if any(p in lost for p, _ in places)}

    def forget(self, partitions: Iterable[Partition]) -> None:
        """Partitions revoked in a rebalance: their new owner reads on from our last commit."""
        lost = set(partitions)
        if not lost:  # every commit asks; walking every event in flight for nothing is not free
            return
        for partition in lost:
            self._done.pop(partition, None)
            self.committed.pop(partition, None)
        for event_id, places in list(self._by_event.items()):  # (offset lists are per partition)
            kept = [(p, o) for p, o in places if p not in lost]
            if kept:
                self._by_event[event_id] = kept
            else:
                del self._by_event[event_id]

    def committable(self) -> dict[Partition, int]:
        """Per partition, the offset after the longest run of done records from the oldest one."""
        out: dict[Partition, int] = {}
        for partition, offsets in self._done.items():
            last = None
            for offset in sorted(offsets):
                if not offsets[offset]:
                    break
                last = offset
                del offsets[offset]
            if last is not None:
                out[partition] = last + 1
        return out

    async def commit(self) -> None:
        consumer = self._consumer
        if consumer is None:
            return
        owned = consumer.assignment()
        self.forget([p for p in self._done if p not in owned])  # revoked without our listener knowing
        offsets = {p: o for p, o in self.committable().items() if p in owned}
        if not offsets:
            return
        try:
            await consumer.commit(offsets)
            self.committed.update(offsets)
        except Exception as exc:  # a rebalance in between: those records are re-delivered and skipped by id
            log.info("could not commit offsets (%s); the records after them will be delivered again", exc)
