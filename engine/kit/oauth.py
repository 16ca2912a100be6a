"""OAuth 2.0 bearer tokens for httpx clients: fetched from a token endpoint when first needed and
renewed before they expire (engine/kit/auth.py builds them from a source's or target's config)."""

from __future__ import annotations

import asyncio
import logging
import os
import time
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any

import httpx

from provisioner.engine.kit.http import describe_http_error

log = logging.getLogger("provisioner.auth")


class RenewingBearer(httpx.Auth, ABC):
    """A bearer token from an OAuth 2.0 token endpoint: fetched when first needed, renewed `margin`
    seconds before it expires, and once more if the server answers 401 (revoked early). A grant
    says how to ask (`_token_request`) and may read more of the answer (`_accepted`)."""

    refused = "the token endpoint refused the request"
    token_url = ""  # where the grant is asked for: credentials may go there too

    def __init__(self, margin: float = 60.0):
        self.margin = margin
        self._token: str | None = None
        self._expires = 0.0
        self._lock = asyncio.Lock()

    @abstractmethod
    def _token_request(self) -> httpx.Request:
        """The request that asks the token endpoint for an access token."""

    def _accepted(self, body: dict[str, Any]) -> None:
        """The rest of a token answer (a rotated refresh token, say)."""

    async def _renew(self, response: httpx.Response) -> None:
        await response.aread()
        if response.status_code >= 400:
            raise httpx.HTTPStatusError(
                f"{self.refused}: {describe_http_error(response)}", request=response.request, response=response
            )
        body = response.json()
        self._token = str(body["access_token"])
        self._expires = time.monotonic() + float(body.get("expires_in") or 3600)
        self._accepted(body)

    async def async_auth_flow(self, request: httpx.Request):  # type: ignore[no-untyped-def]
        # One token request at a time: fifty concurrent first calls must not fetch fifty tokens.
        async with self._lock:
            if self._token is None or time.monotonic() > self._expires - self.margin:
                await self._renew((yield self._token_request()))
            used = self._token
        request.headers["Authorization"] = f"Bearer {used}"
        response = yield request
        if response.status_code == 401:
            async with self._lock:
                if self._token == used:  # nobody renewed it meanwhile
                    await self._renew((yield self._token_request()))
            request.headers["Authorization"] = f"Bearer {self._token}"
            yield request


class ClientCredentials(RenewingBearer):
    """OAuth 2.0 client credentials (RFC 6749 §4.4)."""

    refused = "the token endpoint refused the client credentials"

    def __init__(
        self,
        token_url: str,
        client_id: str,
        client_secret: str,
        scope: str | None = None,
        margin: float = 60.0,
        basic: bool = False,
    ):
        super().__init__(margin)
        self.token_url = token_url
        # Some providers (Greenhouse) want the client id and secret as HTTP Basic, others in the form.
        self.basic = httpx.BasicAuth(client_id, client_secret) if basic else None
        self.form = {
            "grant_type": "client_credentials",
            **({"scope": scope} if scope else {}),
            **({} if basic else {"client_id": client_id, "client_secret": client_secret}),
        }

    def _token_request(self) -> httpx.Request:
        request = httpx.Request("POST", self.token_url, data=self.form, headers={"Accept": "application/json"})
        if self.basic:
            request = next(self.basic.auth_flow(request))
        return request


class RefreshToken(RenewingBearer):
    """OAuth 2.0 refresh-token grant (RFC 6749 §6) for providers whose refresh tokens rotate
    (Lever: access tokens live an hour, each exchange returns a new refresh token and voids the old).

    The newest refresh token is written to `token_file` before it is used, so a restart does not
    fall back to the voided one from the config.
    """

    refused = "the token endpoint refused the refresh token"

    def __init__(
        self,
        token_url: str,
        client_id: str,
        client_secret: str,
        refresh_token: str,
        token_file: Path | None = None,
        margin: float = 60.0,
    ):
        super().__init__(margin)
        self.token_url = token_url
        self.client = {"client_id": client_id, "client_secret": client_secret}
        self.token_file = token_file
        self._refresh = self._load() or refresh_token

    def _load(self) -> str | None:
        path = self.token_file
        return path.read_text().strip() or None if path and path.is_file() else None

    def _save(self, token: str) -> None:
        path = self.token_file
        if path is None:
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(token)

    def _token_request(self) -> httpx.Request:
        form = {"grant_type": "refresh_token", "refresh_token": self._refresh, **self.client}
        return httpx.Request("POST", self.token_url, data=form, headers={"Accept": "application/json"})

    def _accepted(self, body: dict[str, Any]) -> None:
        rotated = body.get("refresh_token")
        if rotated and rotated != self._refresh:
            self._refresh = str(rotated)
            self._save(self._refresh)
            log.info("refresh token rotated%s", f"; kept in {self.token_file}" if self.token_file else "")
