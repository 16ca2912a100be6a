"""A worker's id, `<source>:<remote_id>`: built and taken apart in one place.

The wire format stays a plain string (`Worker.id`, an event's subject, a link's key); this value
type is what code uses when it needs the parts. The remote id may itself hold colons (a URN, a
composite key): only the first colon separates the source.
"""

from __future__ import annotations

from typing import NamedTuple


class WorkerId(NamedTuple):
    """Unpacks as `source, remote_id = WorkerId.parse(text)`."""

    source: str
    remote_id: str

    @classmethod
    def of(cls, source: str, remote_id: object) -> WorkerId:
        return cls(source, str(remote_id))

    @classmethod
    def parse(cls, text: str) -> WorkerId:
        """Never raises: text without a colon is a source with an empty remote id, which a caller
        that needs one refuses in its own words."""
        source, _, remote_id = text.partition(":")
        return cls(source, remote_id)

    @staticmethod
    def text(source: str, remote_id: object) -> str:
        """`str(WorkerId.of(source, remote_id))` without building the value: a read makes one or
        two per record, and the tuple would cost a tenth of normalizing it."""
        return f"{source}:{remote_id}"

    def __str__(self) -> str:
        return self.text(self.source, self.remote_id)
