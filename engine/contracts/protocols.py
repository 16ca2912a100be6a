"""The interfaces a source connector and a target writer implement. Small on purpose."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Protocol, runtime_checkable

from pydantic import ValidationError
from pydantic_core import to_json

from provisioner.engine.contracts.ids import WorkerId
from provisioner.engine.contracts.models import Account, Result, Worker


class SourceError(Exception):
    """A poll that cannot complete (bad credentials, unreachable API); snapshot and cursor stay as they were."""


@dataclass(frozen=True)
class Quarantined:
    """A record that could not become a Worker; it is logged and the rest of the poll flows."""

    remote_id: str | None
    reason: str
    line: int | None = None  # where in a file, when the record has no readable id


@dataclass
class SourceRead:
    workers: list[Worker] = field(default_factory=list)
    quarantined: list[Quarantined] = field(default_factory=list)
    # A complete read lists everyone, so absence means removal; an incremental one does not.
    complete: bool = True
    cursor: dict[str, Any] = field(default_factory=dict)
    # Remote ids known to be gone (a webhook's record was deleted or left scope): removals even
    # when the read is not complete.
    gone: list[str] = field(default_factory=list)


class WritebackRefused(SourceError):
    """The HR system answered and refused the value (a 4xx other than 429): retrying will not help."""


@runtime_checkable
class WritesBack(Protocol):
    """Optional capability: values the engine writes back to a person's HR record."""

    # The Worker fields this vendor's API can set: `validate` refuses a writeback of any other, rather
    # than the first write after a hire failing.
    writable: frozenset[str]

    async def write_back(self, remote_id: str, values: Mapping[str, str]) -> None:
        """Write `values` (keys are Worker field names: work_email, username, phone) to one record and
        return only when the HR system holds them; WritebackRefused when it says no, SourceError when
        it cannot be reached (retried durably)."""
        ...


class Source(Protocol):
    """What every source connector does. Optional abilities are capability protocols of their
    own (`FetchesOne`), detected with isinstance rather than by calling and catching."""

    name: str

    async def read(self, cursor: dict[str, Any]) -> SourceRead: ...

    async def check(self) -> str:
        """Prove connectivity and credentials with the smallest read; raise SourceError if not."""

    async def aclose(self) -> None: ...


@runtime_checkable
class FetchesOne(Protocol):
    """Optional capability: reading one record by its remote id (a webhook, provision-now)."""

    async def fetch_one(self, remote_id: str) -> SourceRead:
        """One record: an incomplete read, with `gone` set when it left scope."""
        ...


def remote_id_of(record: dict[str, Any], id_key: str) -> str | None:
    """The record's id as a string, or None when it has none."""
    remote_id = record.get(id_key)
    return str(remote_id).strip() if remote_id not in (None, "") else None


def normalize_one(
    source: str, record: dict[str, Any], to_worker: Callable[[dict[str, Any]], dict[str, Any]], id_key: str = "id"
) -> Worker | Quarantined:
    """One vendor record as a Worker, or quarantined with the reason it cannot be one."""
    remote_id = remote_id_of(record, id_key)
    if remote_id is None:
        return Quarantined(None, f"record without {id_key!r}")
    try:
        fields = to_worker(record)
        manager = fields.get("manager_id")
        if isinstance(manager, str | int) and ":" not in str(manager) and str(manager).strip():
            # As the HR system writes it (`7001`): a person of the same source.
            fields["manager_id"] = WorkerId.text(source, str(manager).strip())
        return Worker(id=WorkerId.text(source, remote_id), source=source, remote_id=remote_id, **fields)
    except ValidationError as exc:
        return Quarantined(remote_id, "; ".join(_problem(e) for e in exc.errors()))
    except (ValueError, TypeError, KeyError) as exc:
        return Quarantined(remote_id, str(exc))


def normalize_records(
    source: str,
    records: Iterable[dict[str, Any]],
    to_worker: Callable[[dict[str, Any]], dict[str, Any]],
    id_key: str = "id",
) -> SourceRead:
    """Map vendor records to Workers; a record that fails is quarantined with the reason."""
    read = SourceRead()
    for record in records:
        one = normalize_one(source, record, to_worker, id_key)
        if isinstance(one, Worker):
            read.workers.append(one)
        else:
            read.quarantined.append(one)
    return read


@dataclass
class RecordStream:
    """A read whose records are not all held at once: `items` yields each raw record (or one the
    reader quarantined already) as it is read, once, in the thread that consumes it. A record
    becomes a Worker only when its digest differs from the stored one, so `fingerprint` must name
    everything besides the record that decides which Worker it becomes (the connector's settings)."""

    source: str
    items: Iterable[dict[str, Any] | Quarantined]
    to_worker: Callable[[dict[str, Any]], dict[str, Any]]
    id_key: str = "id"
    fingerprint: str = ""
    complete: bool = True
    cursor: dict[str, Any] = field(default_factory=dict)
    gone: list[str] = field(default_factory=list)

    def digest(self, record: dict[str, Any]) -> str:
        """The record's content as the source sent it, cheaply: its JSON (pydantic-core) hashed."""
        hashed = self._fingerprinted.copy()
        hashed.update(to_json(record, fallback=str))
        return hashed.hexdigest()

    @cached_property
    def _fingerprinted(self) -> Any:
        """The hash of the fingerprint alone, copied for each record (a million of them)."""
        return hashlib.blake2b(self.fingerprint.encode(), digest_size=16)

    def worker(self, record: dict[str, Any]) -> Worker | Quarantined:
        return normalize_one(self.source, record, self.to_worker, self.id_key)


@runtime_checkable
class Streams(Protocol):
    """Optional capability: a read that streams its records (`RecordStream`) instead of holding
    every Worker; raises SourceError, before any record, when the source cannot be read at all.
    `streams` is False for a source whose own `read` does more than its stream (a change feed's
    cursor, a queue it acknowledges): it is read whole, through `read`."""

    streams: bool

    async def stream(self, cursor: dict[str, Any]) -> RecordStream: ...


def _problem(error: Any) -> str:
    """One field's problem; a value outside a fixed vocabulary (a status, an employment type) is
    quoted so that a person sees what the source wrote. Other values may be personal: never quoted."""
    said = f"{'.'.join(map(str, error['loc'])) or 'record'}: {error['msg']}"
    return f"{said}, got {error['input']!r}" if error["type"] == "enum" else said


class LeaseBusy(Exception):
    """Another engine held a lease for as long as a wait for it may last: try again later. Counted
    as transient as a 503 is (`status`): the thing is busy, not broken."""

    status = 503


class Leases(Protocol):
    """Short leases shared by every engine process, kept by the runtime: a writer never reaches the
    store itself."""

    def hold(self, target: str, kind: str, name: str, seconds: float) -> AbstractAsyncContextManager[None]:
        """Held for the block (at most `seconds`, after which a crashed holder's lease lapses);
        waiting for it is bounded as well: LeaseBusy when it is not free within `seconds`."""


class NameClaims(Leases, Protocol):
    """Things that must exist once per target across every engine process (a group of a given
    name), claimed through the store by the runtime: a writer never reaches the store itself."""

    async def claim(self, target: str, kind: str, name: str) -> tuple[bool, str | None]:
        """(won, remote id): the winner looks for the thing or creates it, then `settle`s; the
        others get the id once settled (None meanwhile: ask again shortly)."""

    async def settle(self, target: str, kind: str, name: str, remote_id: str | None) -> None:
        """The winner's result; None gives the claim up (nothing found or created)."""

    async def forget(self, target: str, kind: str, name: str, remote_id: str) -> None:
        """The thing `remote_id` was is gone from the target: the next claim looks (or creates) anew."""


@runtime_checkable
class SharesNames(Protocol):
    """Optional capability: a writer that creates named things (groups) and must create each once."""

    def share_names(self, claims: NameClaims) -> None: ...


@runtime_checkable
class ListsGroups(Protocol):
    """Optional capability: the target's groups and their members, and merging duplicates."""

    async def list_groups(self) -> list[GroupInfo]: ...

    async def merge_groups(self, keep: str, others: list[str]) -> None:
        """Members of `others` join `keep`; then `others` are deleted."""

    def unread_groups(self) -> frozenset[str]:
        """Groups whose members the last listing could not read (too large): never compared."""


@dataclass(frozen=True)
class GroupInfo:
    id: str
    name: str
    members: tuple[str, ...] = ()


class Target(Protocol):
    """What every writer for a downstream app does. Every call returns a Result, never raises for
    HTTP errors. Anything more a writer can do is a capability protocol below, detected with
    isinstance (as baton-sdk's connectors declare theirs), never probed by calling it."""

    name: str

    async def lookup(self, worker: Worker, link_id: str | None, attributes: dict[str, Any]) -> Account | None: ...

    async def create(self, worker: Worker, attributes: dict[str, Any]) -> Result: ...

    async def update(
        self, account_id: str, attributes: dict[str, Any], previous: dict[str, Any] | None = None
    ) -> Result:
        """Change only `attributes`; `previous` holds their values as last known."""
        ...

    async def enable(self, account_id: str) -> Result: ...

    async def disable(self, account_id: str) -> Result: ...

    async def delete(self, account_id: str) -> Result: ...

    async def set_groups(self, account_id: str, add: list[str], remove: list[str]) -> Result: ...

    async def aclose(self) -> None: ...


@runtime_checkable
class ListsAccounts(Protocol):
    """Optional capability: every account the app holds, paged (what the reconciler compares).
    Raises ListingUnsettled, after the last account, when the app's pages did not add up."""

    def list_accounts(self) -> AsyncIterator[Account]: ...


class ListingUnsettled(Exception):
    """A listing whose pages did not add up (the app changed while it was read, or its paging is
    broken): an account it never showed is not a missing account."""

    def __init__(self, target: str, what: str, problems: list[str]):
        self.target, self.problems = target, problems
        super().__init__(f"target {target}: the listing of {what} did not add up: {'; '.join(problems)}")


@runtime_checkable
class ReadsAccount(Protocol):
    """Optional capability: one account read by its id, as the writer sees it (mapping paths) and as
    the app answered (what a writeback template reads: `{{ account.emails[0].value }}`)."""

    async def read_account(self, account_id: str) -> tuple[Account, dict[str, Any]] | None:
        """None when the app no longer holds it; raises when the app cannot be read."""
        ...


@runtime_checkable
class Primes(Protocol):
    """Optional capability: warming lookup caches before a large batch."""

    async def prime(self, expected_lookups: int) -> None: ...


@runtime_checkable
class ChecksItself(Protocol):
    """Optional capability: its own `targets check` rows, (what, passed, detail)."""

    async def check(self) -> list[tuple[str, bool, str]]: ...


@runtime_checkable
class KnowsNotKept(Protocol):
    """Optional capability: the mapped attributes the app was seen not to store (not drift)."""

    def not_kept(self) -> set[str]: ...
