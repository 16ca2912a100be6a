"""`type: adp` — ADP Workforce Now workers over mutual TLS, with ADP's event notification queue as
the change feed.

Auth: OAuth 2.0 client credentials at https://accounts.adp.com/auth/oauth/v2/token (client id and
secret as HTTP Basic), then bearer tokens on https://api.adp.com; both hosts require the client
certificate ADP signed (https://developers.adp.com/articles/guides/auth-process-data-connector-apps,
https://developers.adp.com/articles/general/access-tokens). Paging: `$top` (at most 100 in
Workforce Now) and `$skip`; a page past the end is 204 No Content
(https://developers.adp.com/articles/general/introduction-to-adp-restful-apis).

Change feed (https://developers.adp.com/articles/general/adp-event-apis-and-event-notification-guide):
`GET /core/v1/event-notification-messages` gives the queue's head (its id in `adp-msg-msgid`, 204
when empty); the message stays there until `DELETE .../{id}`. A message is deleted only once the
change it announced is committed: a poll names the messages it read in its cursor, and the next
poll, which starts from that committed cursor, deletes them. A crash in between re-reads them.
Messages older than the last committed full read are already covered and are deleted unread; a
head message older than `queue_backlog` means the queue fell behind, and one full read catches up.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import AsyncIterator, Awaitable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import httpx
from pydantic import Field, SecretStr, field_validator

from provisioner.engine.config import parse_duration
from provisioner.engine.contracts.protocols import SourceError, SourceRead, normalize_records
from provisioner.engine.kit.auth import AuthScheme, ClientCredentialsAuth
from provisioner.engine.kit.paging import PagingError, PagingRunaway
from provisioner.engine.kit.words import plural
from provisioner.sources.adp.workers import worker_fields
from provisioner.sources.base import HttpSource, HttpSourceSettings

T = TypeVar("T")
log = logging.getLogger("provisioner.sources")
WORKERS = "/hr/v2/workers"
MESSAGES = "/core/v1/event-notification-messages"
# Words of an OpenSSL handshake refusal about the client certificate (TLS 1.3 alerts and 1.2's).
_CERT_REFUSALS = ("certificate required", "certificate_required", "unknown ca", "bad certificate", "handshake failure")


class AdpSettings(HttpSourceSettings):
    base_url: str = "https://api.adp.com"
    token_url: str = "https://accounts.adp.com/auth/oauth/v2/token"
    client_id: str
    client_secret: SecretStr
    cert_file: Path = Field(description="the client certificate ADP signed (PEM)")
    key_file: Path = Field(description="its private key (PEM)")
    key_password: SecretStr | None = Field(default=None, description="the key's passphrase, as ${ENV}")
    ca_file: Path | None = Field(default=None, description="CA bundle for ADP's servers; the system's if unset")
    page_size: int = Field(default=100, ge=1, le=100)  # Workforce Now's largest $top
    queue_backlog: float = Field(default=300.0, description="a queue head this old triggers one full read")

    @field_validator("queue_backlog", mode="before")
    @classmethod
    def _backlog(cls, value: Any) -> Any:
        return parse_duration(value)


def _when(value: Any) -> datetime | None:
    try:
        return datetime.fromisoformat(str(value)) if value else None
    except ValueError:
        return None


def _subject(message: dict[str, Any]) -> tuple[str | None, datetime | None]:
    """(the worker's associateOID, when the change was made) of one notification message. ADP's
    samples put the worker in eventContext.worker, or straight in eventContext."""
    event = (message.get("events") or [{}])[0]
    context = (event.get("data") or {}).get("eventContext") or {}
    aoid = (context.get("worker") or {}).get("associateOID") or context.get("associateOID")
    return aoid, _when(event.get("creationDateTime") or event.get("recordDateTime"))


def _tls_refusal(exc: BaseException) -> str | None:
    text = str(exc).lower() + str(exc.__cause__ or "").lower() + str(exc.__context__ or "").lower()
    return next((words for words in _CERT_REFUSALS if words in text), None)


class AdpSource(HttpSource):
    vendor = "ADP"
    settings_model = AdpSettings
    id_key = "associateOID"
    credential_hint = "client_id, client_secret, cert_file and key_file"
    path_settings = ("cert_file", "key_file", "ca_file")  # relative to the config file's directory

    def __init__(self, name: str, settings: AdpSettings):
        super().__init__(name, settings)
        self.adp = settings
        self.tls = self.tls_for(settings)

    @classmethod
    def auth_for(cls, s: HttpSourceSettings) -> AuthScheme:
        assert isinstance(s, AdpSettings)
        return ClientCredentialsAuth(
            token_url=s.token_url, client_id=s.client_id, client_secret=s.client_secret, client_auth="basic"
        )

    @classmethod
    def tls_for(cls, settings: HttpSourceSettings) -> ssl.SSLContext | None:
        assert isinstance(settings, AdpSettings)
        try:
            context = ssl.create_default_context(cafile=settings.ca_file)
        except (OSError, ssl.SSLError) as exc:
            raise ValueError(f"ca_file {settings.ca_file}: cannot be read as a CA bundle ({_reason(exc)})") from None
        password = settings.key_password.get_secret_value() if settings.key_password else None
        for path in (settings.cert_file, settings.key_file):
            if not path.is_file():
                raise ValueError(f"{path}: no such file (ADP's client certificate and its key are both needed)")
        try:
            context.load_cert_chain(settings.cert_file, settings.key_file, password)
        except ssl.SSLError:
            raise ValueError(
                "cert_file/key_file: the client certificate does not load with its key (a wrong or missing "
                "key_password, or a key that belongs to another certificate)"
            ) from None
        except OSError as exc:
            raise ValueError(f"cert_file/key_file: cannot be read ({_reason(exc)})") from None
        return context

    async def _handshake_refusal(self) -> str | None:
        """Why ADP's server refuses our TLS handshake, if it does. After retries httpx may only say
        the server disconnected; one bare connection shows the alert itself."""
        url = httpx.URL(self.settings.base_url)
        if url.scheme != "https" or self.tls is None:
            return None
        hung_up = "closed the connection after the handshake without answering"
        try:
            async with asyncio.timeout(self.settings.timeout):
                reader, writer = await asyncio.open_connection(url.host, url.port or 443, ssl=self.tls)
        except ssl.SSLError as exc:
            return _tls_refusal(exc) or str(exc.reason or type(exc).__name__).lower().replace("_", " ")
        except (OSError, TimeoutError):
            return None  # not reached at all: that is not a refused certificate
        try:
            async with asyncio.timeout(self.settings.timeout):
                writer.write(f"HEAD / HTTP/1.1\r\nHost: {url.host}\r\nConnection: close\r\n\r\n".encode())
                await writer.drain()
                # In TLS 1.3 the server judges the client certificate after the handshake: it sends
                # an alert, or hangs up (a reset, when our request is already on its way).
                answered = await reader.read(1)
        except ssl.SSLError as exc:
            return _tls_refusal(exc) or str(exc.reason or type(exc).__name__).lower().replace("_", " ")
        except ConnectionError:
            return hung_up
        except TimeoutError:
            return None
        finally:
            writer.close()
        return None if answered else hung_up

    async def _guarded(self, work: Awaitable[T]) -> T:
        async def told() -> T:
            try:
                return await work
            except httpx.TransportError as exc:
                if (refusal := _tls_refusal(exc) or await self._handshake_refusal()) is None:
                    raise
                raise SourceError(
                    f"source {self.name}: ADP refused the TLS handshake ({refusal}): the client certificate "
                    "was missing or not one ADP signed; check cert_file and key_file"
                ) from None

        return await super()._guarded(told())

    def refused(self, response: httpx.Response) -> SourceError:
        said = adp_message(response)
        if said is None or response.status_code == 401:
            return super().refused(response)
        where = f"{response.request.method} {response.request.url.path}"
        if response.status_code == 403:
            return SourceError(
                f"source {self.name}: ADP denied access (HTTP 403) to {where}: {said}; "
                "the credential lacks a permission or scope"
            )
        return SourceError(f"source {self.name}: ADP answered HTTP {response.status_code} to {where}: {said}")

    # --- the listing ---------------------------------------------------------------------------
    async def records(self, since: datetime | None) -> AsyncIterator[dict[str, Any]]:
        """Every worker, page by page (the queue, not a date filter, tells what changed)."""
        top = self.adp.page_size
        seen: set[str] = set()
        for page in range(self.adp.max_pages):
            response = await self.client.get(WORKERS, params={"$top": top, "$skip": page * top})
            if response.status_code == 204:
                return  # past the last worker
            if response.status_code != 200:
                raise PagingError(response)
            workers = (response.json() if response.content else {}).get("workers") or []
            ids = {str(w.get("associateOID")) for w in workers}
            if workers and ids <= seen:  # $skip was ignored: the same workers again, page after page
                raise PagingRunaway(f"ADP sent page {page + 1} of {WORKERS} with only workers already read")
            seen |= ids
            for worker in workers:
                yield worker
            if len(workers) < top:
                return
        raise PagingRunaway(f"the listing of {WORKERS} passed {self.adp.max_pages} pages (max_pages)")

    async def record(self, remote_id: str) -> dict[str, Any] | None:
        response = await self.client.get(f"{WORKERS}/{remote_id}")
        if response.status_code in (204, 404) or (
            response.status_code == 400 and "associateoid" in response.text.lower()
        ):
            return None  # ADP answers an unknown associateOID with "associateOID is invalid."
        if response.status_code != 200:
            raise PagingError(response)
        workers = response.json().get("workers") or []
        return workers[0] if workers else None

    def to_worker(self, record: dict[str, Any]) -> dict[str, Any]:
        return worker_fields(record, self.name)

    # --- the queue -----------------------------------------------------------------------------
    async def _acknowledge(self, msgids: list[str]) -> None:
        for msgid in msgids:
            response = await self.client.delete(f"{MESSAGES}/{msgid}")
            if response.status_code not in (200, 202, 204, 404):  # 404: deleted already
                raise PagingError(response)

    async def _head(self) -> tuple[str, dict[str, Any]] | None:
        response = await self.client.get(MESSAGES)
        if response.status_code == 204:
            return None  # nothing queued (or no queue yet)
        if response.status_code != 200:
            raise PagingError(response)
        return response.headers.get("adp-msg-msgid", ""), response.json()

    async def _first_news(self, covered: datetime | None) -> tuple[str, str, datetime | None] | None:
        """The first queued message the committed cursor does not cover, as (id, worker, made at).
        Messages about no worker, or made before the last committed full read, are deleted on the
        way: their changes are committed already."""
        while (head := await self._head()) is not None:
            msgid, message = head
            aoid, made = _subject(message)
            if not msgid:
                raise SourceError(f"source {self.name}: ADP sent a notification message without adp-msg-msgid")
            if aoid and not (covered and made and made < covered):
                return msgid, aoid, made
            await self._acknowledge([msgid])
        return None

    # --- a poll --------------------------------------------------------------------------------
    async def read(self, cursor: dict[str, Any]) -> SourceRead:
        return await self._guarded(self._read(cursor, datetime.now(UTC)))

    async def _read(self, cursor: dict[str, Any], now: datetime) -> SourceRead:
        await self._acknowledge(list(cursor.get("queue_ack") or []))
        full = self._since(cursor, now) is None or not cursor.get("queue_covered_until")
        news = None
        if not full:
            overlap = timedelta(seconds=self.settings.overlap)
            covered = _when(cursor["queue_covered_until"])
            news = await self._first_news(covered - overlap if covered else None)
            backlog = timedelta(seconds=self.adp.queue_backlog)
            full = news is not None and news[2] is not None and news[2] < now - backlog
        gone: list[str] = []
        if full:
            records = [r async for r in self.records(None)]
        elif news is None:
            records = []
        else:
            one = await self.record(news[1])
            records, gone = ([one], []) if one is not None else ([], [news[1]])
        read = normalize_records(self.name, records, self.to_worker, self.id_key)
        read.complete, read.gone = full, gone
        read.cursor = {
            "since": now.isoformat(),
            "mode": "full" if full else "incremental",
            "last_full_read": now.isoformat() if full else cursor["last_full_read"],
            "records": len(records),
            # Changes made before this moment are in what this poll commits.
            "queue_covered_until": now.isoformat() if full else cursor["queue_covered_until"],
            "queue_ack": [news[0]] if news else [],
        }
        how = "full read" if full else "read from the event queue"
        log.info("source %s: %s, %s", self.name, how, plural(len(records), "record"))
        return read


def adp_message(response: httpx.Response) -> str | None:
    """The text of ADP's error body: a confirmMessage's userMessage, or an OAuth error_description."""
    try:
        body = response.json()
    except ValueError:
        return None
    if not isinstance(body, dict):
        return None
    confirm = body.get("confirmMessage") or {}
    messages = list(confirm.get("processMessages") or [])
    for resource in confirm.get("resourceMessages") or []:
        messages += resource.get("processMessages") or []
    texts = [
        str(m["userMessage"]["messageTxt"]).strip() for m in messages if (m.get("userMessage") or {}).get("messageTxt")
    ]
    return "; ".join(texts) or body.get("error_description") or None


def _reason(exc: BaseException) -> str:
    return getattr(exc, "strerror", None) or getattr(exc, "reason", None) or type(exc).__name__
