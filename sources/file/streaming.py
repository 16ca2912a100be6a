"""Reading an export one record at a time: CSV, a JSON array (or `{"workers": [...]}`) and JSON
Lines (`.jsonl`, `.ndjson`). The file is read in blocks of `BLOCK` characters, so what is held at
once is a block and a record, whatever the file's size.

Bytes the encoding cannot decode are kept as lone surrogates (`errors="surrogateescape"`), so a CSV
row holding them is quarantined on its own; in JSON they make the whole file unreadable, as before.
"""

from __future__ import annotations

import codecs
import csv
import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

from provisioner.engine.contracts.protocols import Quarantined, SourceError

BLOCK = 1 << 20
# Part of every record's digest: a change to how records are read or mapped changes it once, so
# the next poll builds each Worker again and compares the Workers' own digests.
STREAM_FORMAT = "1"
JSON_LINES = (".jsonl", ".ndjson")

Item = dict[str, Any] | Quarantined
Fail = Callable[[str], SourceError]

# Bytes the encoding could not decode, kept as lone surrogates by errors="surrogateescape".
_ESCAPED_BYTE = re.compile("[\udc80-\udcff]")


def undecodable(value: str) -> bool:
    """True when `value` holds bytes the encoding could not decode (a regex scan, in C). Text that
    is all ASCII cannot hold them, and a str knows that of itself without a scan."""
    return not value.isascii() and _ESCAPED_BYTE.search(value) is not None


def _open(path: Path, encoding: str, fail: Fail) -> IO[str]:
    # utf-8-sig: a byte-order mark (Excel writes one) is not part of the first column's name.
    encoding = "utf-8-sig" if codecs.lookup(encoding).name == "utf-8" else encoding
    try:
        return path.open(encoding=encoding, errors="surrogateescape", newline="")
    except FileNotFoundError:
        raise fail("does not exist") from None
    except OSError as exc:
        raise fail(f"cannot be read ({exc.strerror or type(exc).__name__})") from None


def iter_records(path: Path, encoding: str, id_field: str, fail: Fail) -> Iterator[Item]:
    """Every record of the file, in order; raises `fail(...)`'s SourceError for a file that cannot
    be read (before the first record when it is missing, empty or has no header)."""
    with _open(path, encoding, fail) as file:
        try:
            head = _first_text(file)
        except OSError as exc:
            raise fail(f"cannot be read ({exc.strerror or type(exc).__name__})") from None
        if not head.strip():
            raise fail("is empty")
        suffix = path.suffix.lower()
        if suffix == ".json":
            yield from _json_array(head, file, encoding, fail)
        elif suffix in JSON_LINES:
            yield from _json_lines(head, file, encoding, fail)
        else:
            yield from _csv(head, file, encoding, id_field, fail)


def _first_text(file: IO[str]) -> str:
    """The file's first block, extended until it holds more than white space (or the file ends)."""
    head = file.read(BLOCK)
    while head and not head.strip():
        more = file.read(BLOCK)
        if not more:
            break
        head += more
    return head


def _blocks(head: str, file: IO[str], encoding: str, fail: Fail) -> Iterator[str]:
    block = head
    while block:
        if undecodable(block):
            raise fail(f"is not valid {encoding} text")
        yield block
        block = file.read(BLOCK)


def _json_array(head: str, file: IO[str], encoding: str, fail: Fail) -> Iterator[Item]:
    """A top-level array is decoded one element at a time; `{"workers": [...]}` (rare, small) is
    decoded whole. Any fault re-reads the file once to say where it is, as a whole-file decode would."""
    blocks = _blocks(head, file, encoding, fail)
    buffer = _Buffer(next(blocks), blocks)
    if buffer.peek() != "[":
        yield from _whole(buffer.text[buffer.at :] + "".join(blocks), fail)
        return
    buffer.at += 1
    if buffer.peek() == "]":
        buffer.at += 1
        _end(buffer, file, fail)
        return
    while True:
        value = buffer.value()
        if value is _BROKEN:
            raise fail(_invalid(file))
        if not isinstance(value, dict):
            raise fail("must hold a list of objects or {'workers': [...]}")
        yield value
        after = buffer.peek()
        buffer.at += 1
        if after == "]":
            _end(buffer, file, fail)
            return
        if after != ",":
            raise fail(_invalid(file))


_BROKEN = object()
_WS = re.compile(r"\s*")


class _Buffer:
    """The undecoded rest of a JSON text and the blocks still to come."""

    def __init__(self, text: str, blocks: Iterator[str]):
        self.text, self.at, self.blocks = text, 0, blocks
        self.decoder = json.JSONDecoder()

    def _more(self) -> bool:
        more = next(self.blocks, "")
        self.text, self.at = self.text[self.at :] + more, 0
        return bool(more)

    def peek(self) -> str:
        """The next character that is not white space ("" at the end)."""
        while True:
            self.at = _WS.match(self.text, self.at).end()  # type: ignore[union-attr]
            if self.at < len(self.text) or not self._more():
                return self.text[self.at : self.at + 1]

    def value(self) -> Any:
        self.peek()
        while True:
            try:
                value, end = self.decoder.raw_decode(self.text, self.at)
            except json.JSONDecodeError:
                if not self._more():
                    return _BROKEN
                continue
            if end >= len(self.text) and self._more():
                continue  # a number or literal may go on in the next block: decode it whole
            self.at = end
            return value


def _end(buffer: _Buffer, file: IO[str], fail: Fail) -> None:
    if buffer.peek():
        raise fail(_invalid(file))


def _invalid(file: IO[str]) -> str:
    file.seek(0)
    try:
        json.loads(file.read())
    except json.JSONDecodeError as exc:
        return f"is not valid JSON (line {exc.lineno}, column {exc.colno})"
    return "is not valid JSON"


def _whole(text: str, fail: Fail) -> Iterator[Item]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise fail(f"is not valid JSON (line {exc.lineno}, column {exc.colno})") from None
    if isinstance(data, dict):
        data = data.get("workers", [])
    if not isinstance(data, list) or not all(isinstance(r, dict) for r in data):
        raise fail("must hold a list of objects or {'workers': [...]}")
    yield from data


def _json_lines(head: str, file: IO[str], encoding: str, fail: Fail) -> Iterator[Item]:
    rest = ""
    number = 0
    for block in _blocks(head, file, encoding, fail):
        lines = (rest + block).split("\n")
        rest = lines.pop()
        for line in lines:
            number += 1
            if line.strip():
                yield _json_line(line, number, fail)
    if rest.strip():
        yield _json_line(rest, number + 1, fail)


def _json_line(line: str, number: int, fail: Fail) -> dict[str, Any]:
    try:
        value = json.loads(line)
    except json.JSONDecodeError as exc:
        raise fail(f"is not valid JSON Lines (line {number}, column {exc.colno})") from None
    if not isinstance(value, dict):
        raise fail(f"line {number} is not an object: each line must hold one")
    return value


def _csv(head: str, file: IO[str], encoding: str, id_field: str, fail: Fail) -> Iterator[Item]:
    del head  # csv reads the file itself, from its start (a block may end inside a row)
    file.seek(0)
    reader = csv.DictReader(file)
    if reader.fieldnames is None or undecodable("".join(reader.fieldnames)):
        raise fail("has no readable header row")
    for row in reader:
        # A row's values, not its dict: one scan in C for the usual clean row.
        if not undecodable("".join(v for v in row.values() if isinstance(v, str))):
            yield row
            continue
        remote_id = row.get(id_field)
        readable = remote_id if isinstance(remote_id, str) and remote_id and not undecodable(remote_id) else None
        why = f"line {reader.line_num}: bytes that are not valid {encoding} (set `encoding:`)"
        yield Quarantined(readable, why, line=reader.line_num)


def counted(items: Iterator[Item], cursor: dict[str, Any]) -> Iterator[Item]:
    """`items`, counting them into `cursor["records"]` as they go (the file's cursor)."""
    n = 0
    for item in items:
        n += 1
        yield item
    cursor["records"] = n
