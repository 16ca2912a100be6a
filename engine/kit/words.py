"""Words every screen and log line shares."""

from __future__ import annotations


def plural(count: int, noun: str, many: str | None = None) -> str:
    """`1 source`, `2 sources`, `0 sources`: every count the CLI prints goes through here."""
    if count == 1:
        return f"1 {noun}"
    if many is None:
        many = noun[:-1] + "ies" if noun.endswith("y") and noun[-2:-1] not in "aeiou" else noun + "s"
    return f"{count} {many}"
