"""Links moved by events applied here and not yet recorded, laid over what the store said.

A worker's next event is planned from them (the store learns them only when its batch is
recorded), and so is a reference to a manager whose account was just made. The pipeline keeps a
worker's entries while any of its events is in flight, so they outlive the store read made for
those events."""

from __future__ import annotations

from collections import ChainMap
from collections.abc import Container
from typing import cast

from provisioner.engine.contracts.records import EventOutcome, Link, LinkKey
from provisioner.engine.runtime.apply import Known
from provisioner.engine.runtime.usecases.apply import final_links


class LinkOverlay:
    def __init__(self) -> None:
        self._moved: dict[LinkKey, Link | None] = {}  # None: the account was unlinked

    def over(self, stored: dict[LinkKey, Link]) -> Known:
        """What a plan may see: the links moved here, else those read from the store. Read only:
        nothing writes through it, so the stored map is never widened to hold a None."""
        return ChainMap(self._moved, cast("dict[LinkKey, Link | None]", stored))

    def moved(self, outcome: EventOutcome) -> None:
        self._moved.update(final_links([outcome]))

    def recorded(self, in_flight: Container[str]) -> None:
        """The store now holds what was recorded: keep only the entries of workers still in flight."""
        for key in [key for key in self._moved if key[0] not in in_flight]:
            del self._moved[key]
