"""What every HTTP source shares: settings, the client (auth, retries, rate limit), the
full-vs-incremental read, error wording, and the single-record fetch webhooks use.

A vendor file subclasses `HttpSource` and writes three things: `records(since)` (the raw records,
enriched), `record(remote_id)` (one of them, or None when it is gone or out of scope) and
`to_worker(record)` (the field mapping).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from datetime import UTC, date, datetime, timedelta
from typing import Any, ClassVar, TypeVar

import httpx
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator

from provisioner.engine.config import describe, parse_duration, parse_rate, rate_window
from provisioner.engine.contracts.protocols import RecordStream, SourceError, SourceRead, normalize_records
from provisioner.engine.kit.auth import AuthConfig, AuthScheme, NoAuth
from provisioner.engine.kit.http import RetryPolicy, describe_http_error, resilient_client
from provisioner.engine.kit.limits import DEFAULT_MAX_RESPONSE, MAX_PAGES, ResponseTooLarge
from provisioner.engine.kit.origin import CrossOrigin
from provisioner.engine.kit.paging import PagingError, PagingRunaway, PagingStyle, collect, paginate, restartable
from provisioner.engine.kit.words import plural

log = logging.getLogger("provisioner.sources")

# Part of every record's digest: a change to how records are mapped changes every digest once, so
# the next poll builds each Worker again and compares the Workers' own digests.
STREAM_FORMAT = "1"

T = TypeVar("T")
R = TypeVar("R")


class HttpSourceSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    base_url: str
    auth: AuthConfig = Field(default_factory=NoAuth)
    timeout: float = 30.0
    max_attempts: int = Field(default=5, ge=1)
    backoff: float = 0.5
    rate_limit: float | None = Field(default=None, description="requests per second; '10/10s' style accepted")
    rate_window: float | None = Field(default=None, description="meter the limit over a rolling window (s)")
    burst: int | None = None
    page_size: int = Field(default=100, ge=1)
    full_read_every: float = Field(default=86400.0, description="a full read (finds removals) at least this often")
    overlap: float = Field(default=600.0, description="incremental reads start this long before the last one")
    incremental: bool = True
    webhook_secret: SecretStr | None = None
    concurrency: int = Field(default=4, ge=1, description="detail requests in flight during a read")
    max_response_bytes: int = Field(default=DEFAULT_MAX_RESPONSE, ge=1024, description="a larger answer is refused")
    max_pages: int = Field(default=MAX_PAGES, ge=1, description="pages in one listing at most")

    @field_validator("rate_limit", mode="before")
    @classmethod
    def _rate(cls, value: Any) -> Any:
        return parse_rate(value) if isinstance(value, str) else value

    @field_validator("full_read_every", "overlap", mode="before")
    @classmethod
    def _duration(cls, value: Any) -> Any:
        return parse_duration(value)


class HttpSource:
    vendor: ClassVar[str] = "the vendor"
    settings_model: ClassVar[type[HttpSourceSettings]] = HttpSourceSettings
    id_key: ClassVar[str] = "id"
    # The vendor's documented limit, used when the config names none.
    default_rate: ClassVar[str | None] = None
    default_burst: ClassVar[int | None] = None

    # Whether `stream` is this source's whole read (engine/contracts Streams); a vendor that writes
    # its own `read` (ADP's queue, Ashby's syncToken) is read through it, never streamed past it.
    streams: ClassVar[bool] = True
    requires_auth: ClassVar[bool] = True  # vendors that take credentials in their own keys say False
    credential_hint: ClassVar[str] = "an auth block"
    # A vendor's shorthand for its credential (`api_key: ...`) and the auth block it stands for;
    # the key's value goes where the block says "{key}". An explicit `auth` block wins.
    key_field: ClassVar[str | None] = None
    key_auth: ClassVar[dict[str, str]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "read" in cls.__dict__:
            cls.streams = False

    def __init__(self, name: str, settings: HttpSourceSettings):
        self.name = name
        self.settings = settings
        self._gone: list[str] = []
        self._shared: dict[str, asyncio.Future[Any]] = {}
        auth, headers = self.auth_for(settings).for_httpx()
        self.client = resilient_client(
            settings.base_url.rstrip("/"),
            auth=auth,
            headers={"Accept": "application/json", **headers},
            timeout=settings.timeout,
            rate=settings.rate_limit,
            burst=settings.burst,
            window=settings.rate_window,
            policy=self.retry_policy(),
            app=f"source {name}",
            max_response=settings.max_response_bytes,
            tls=self.tls_for(settings),
        )

    @classmethod
    def from_settings(cls, name: str, raw: dict[str, Any]) -> HttpSource:
        settings, found = cls._checked(raw)
        if settings is None:
            problems = "; ".join(f"{'.'.join(map(str, loc))}: {msg}" if loc else msg for loc, msg in found)
            raise ValueError(f"source {name!r} ({cls.vendor}): {problems}")
        return cls(name, settings)

    @classmethod
    def problems(cls, raw: dict[str, Any], known: Iterable[str] = ()) -> list[tuple[tuple[Any, ...], str]]:
        """Every problem with these settings, each at its key, without connecting anywhere; `known`
        are the entry's common keys, for "did you mean"."""
        return cls._checked(raw, known)[1]

    @classmethod
    def _checked(
        cls, raw: dict[str, Any], known: Iterable[str] = ()
    ) -> tuple[HttpSourceSettings | None, list[tuple[tuple[Any, ...], str]]]:
        """The settings, validated once, or None and the problems."""
        raw = dict(raw)
        if "rate_limit" not in raw and cls.default_rate:
            raw["rate_limit"] = cls.default_rate
            raw.setdefault("burst", cls.default_burst)
        if "rate_window" not in raw and (window := rate_window(raw.get("rate_limit"))) and not raw.get("burst"):
            raw["rate_window"] = window
        if cls.key_field and raw.get(cls.key_field) and "auth" not in raw:
            key = raw[cls.key_field]
            raw["auth"] = {name: key if value == "{key}" else value for name, value in cls.key_auth.items()}
        try:
            settings = cls.settings_model.model_validate(raw)
        except ValidationError as exc:
            return None, describe(cls.settings_model, exc.errors(), known)
        try:
            auth = cls.auth_for(settings)
        except ValueError as exc:
            return None, [(("auth",), str(exc))]
        if cls.requires_auth and auth.type == "none":
            return None, [((), f"{cls.vendor} needs credentials: {cls.credential_hint}")]
        try:
            cls.tls_for(settings)
        except ValueError as exc:
            return None, [((), str(exc))]
        return settings, []

    @classmethod
    def auth_for(cls, settings: HttpSourceSettings) -> AuthScheme:
        """The auth scheme these settings describe; raises ValueError naming what is missing."""
        return settings.auth

    @classmethod
    def tls_for(cls, settings: HttpSourceSettings) -> ssl.SSLContext | None:
        """TLS settings other than the default (a client certificate); raises ValueError naming
        what cannot be loaded."""
        return None

    def retry_policy(self) -> RetryPolicy:
        return RetryPolicy(max_attempts=self.settings.max_attempts, base_delay=self.settings.backoff)

    # --- what a vendor file writes -------------------------------------------------------------
    def records(self, since: datetime | None) -> AsyncIterator[dict[str, Any]]:
        raise NotImplementedError

    async def record(self, remote_id: str) -> dict[str, Any] | None:
        raise NotImplementedError

    def to_worker(self, record: dict[str, Any]) -> dict[str, Any]:
        raise NotImplementedError

    # --- shared --------------------------------------------------------------------------------
    async def shared(self, path: str) -> Any:
        """GET a resource many records point at (a posting, a job) once per read, even when asked
        for concurrently; a failure is not remembered."""
        if path not in self._shared:
            self._shared[path] = asyncio.ensure_future(self.get_json(path, missing_ok=True))
        try:
            return await self._shared[path] or {}
        except Exception:
            self._shared.pop(path, None)
            raise

    def note_gone(self, remote_ids: Iterable[str]) -> None:
        """Records the vendor reports deleted during an incremental read: removals all the same."""
        self._gone.extend(remote_ids)

    def pages(self, path: str, paging: PagingStyle, params: dict[str, Any] | None = None) -> AsyncIterator[list[Any]]:
        return paginate(self.client, path, paging, params, self.settings.max_pages)

    async def get_json(self, path: str, params: dict[str, Any] | None = None, missing_ok: bool = False) -> Any:
        """GET one resource; None for a 404 when `missing_ok` (deleted between list and detail)."""
        response = await self.client.get(path, params=params)
        if response.status_code == 404 and missing_ok:
            return None
        if response.status_code != 200:
            raise PagingError(response)
        return response.json()

    async def each(self, items: Iterable[T], fetch: Callable[[T], Awaitable[R]]) -> list[R]:
        """Run `fetch` for every item, a few at a time (the rate limiter paces them), in order."""
        slots = asyncio.Semaphore(self.settings.concurrency)

        async def one(item: T) -> R:
            async with slots:
                return await fetch(item)

        # A task group, not gather: when one fetch fails the others are cancelled, instead of
        # running on (and hammering the vendor) after the read has already failed.
        try:
            async with asyncio.TaskGroup() as group:
                tasks = [group.create_task(one(item)) for item in items]
        except BaseExceptionGroup as failed:
            raise failed.exceptions[0] from None
        return [task.result() for task in tasks]

    def _since(self, cursor: dict[str, Any], now: datetime) -> datetime | None:
        """Where an incremental read starts, or None when this read must be full."""
        if not self.settings.incremental or not cursor.get("since") or not cursor.get("last_full_read"):
            return None
        last_full = datetime.fromisoformat(cursor["last_full_read"])
        if now - last_full >= timedelta(seconds=self.settings.full_read_every):
            return None
        return datetime.fromisoformat(cursor["since"]) - timedelta(seconds=self.settings.overlap)

    async def read(self, cursor: dict[str, Any]) -> SourceRead:
        stream = await self.stream(cursor)
        read = normalize_records(self.name, stream.items, self.to_worker, self.id_key)  # type: ignore[arg-type]
        read.complete, read.gone, read.cursor = stream.complete, stream.gone, stream.cursor
        return read

    async def stream(self, cursor: dict[str, Any]) -> RecordStream:
        """The listing's raw records, for a diff that builds a Worker only for a record that reads
        differently from last time (the records are held, their Workers are not)."""
        now = datetime.now(UTC)
        since = self._since(cursor, now)
        checkpoint = f"the last checkpoint ({since.isoformat()})" if since else "the start of this full read"

        async def listing() -> list[dict[str, Any]]:
            self._gone, self._shared = [], {}  # postings and jobs may have changed since last time
            return await collect(self.records(since))

        records = await self._guarded(restartable(listing, f"source {self.name}", checkpoint))
        cursor = {
            "since": now.isoformat(),
            "mode": "full" if since is None else "incremental",
            "last_full_read": now.isoformat() if since is None else cursor["last_full_read"],
            "records": len(records),
        }
        log.info("source %s: %s read, %s", self.name, cursor["mode"], plural(len(records), "record"))
        return RecordStream(
            self.name,
            records,
            self.to_worker,
            self.id_key,
            self.fingerprint(),
            complete=since is None,
            cursor=cursor,
            gone=list(dict.fromkeys(self._gone)) if since is not None else [],
        )

    def fingerprint(self) -> str:
        """What besides a record decides its Worker: the connector, its settings (credentials left
        out) and the day, since a mapping may compare dates with today (a termination date passes)."""
        settings = self.settings.model_dump_json(exclude={"auth", "webhook_secret"})
        kind = f"{type(self).__module__}.{type(self).__qualname__}"
        return f"{kind}|{STREAM_FORMAT}|{date.today().isoformat()}|{settings}"

    async def fetch_one(self, remote_id: str) -> SourceRead:
        """One record, for a webhook: it flows through the same diff as a poll, so both agree."""
        record = await self._guarded(self.record(remote_id))
        if record is None:
            return SourceRead(complete=False, gone=[remote_id])
        read = normalize_records(self.name, [record], self.to_worker, self.id_key)
        read.complete = False
        return read

    async def check(self) -> str:
        """Prove connectivity and credentials with the smallest read the vendor allows."""

        async def first_record() -> None:
            async with contextlib.aclosing(self.records(datetime.now(UTC))) as records:  # type: ignore[type-var]
                async for _ in records:
                    return

        await self._guarded(first_record())
        return "credentials accepted"

    async def _guarded(self, work: Awaitable[T]) -> T:
        try:
            return await work
        except PagingError as exc:
            raise self.refused(exc.response) from None
        except (ResponseTooLarge, CrossOrigin) as exc:  # worded with the source's name already
            raise SourceError(str(exc)) from None
        except PagingRunaway as exc:
            raise SourceError(f"source {self.name}: {exc}") from None
        except httpx.HTTPStatusError as exc:  # the token endpoint said no
            raise SourceError(f"source {self.name}: {exc.args[0]}") from None
        except httpx.HTTPError as exc:
            raise SourceError(f"source {self.name}: {self.vendor} unreachable: {type(exc).__name__}") from None

    def refused(self, response: httpx.Response) -> SourceError:
        if response.status_code == 401:
            return SourceError(
                f"source {self.name}: {self.vendor} refused the credentials (HTTP 401); "
                "check the key or token in the config"
            )
        if response.status_code == 403:
            return SourceError(
                f"source {self.name}: {self.vendor} denied access (HTTP 403): "
                f"{describe_http_error(response)}; the credential lacks a permission or scope"
            )
        return SourceError(f"source {self.name}: {describe_http_error(response)}")

    async def aclose(self) -> None:
        await self.client.aclose()


def epoch_ms(value: Any) -> datetime | None:
    """Lever's timestamps are epoch milliseconds."""
    return datetime.fromtimestamp(int(value) / 1000, UTC) if value not in (None, "") else None


def iso_utc(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
