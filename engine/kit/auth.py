"""Auth schemes as configured components, shared by source connectors and the REST writer.

`type` picks the scheme; every secret is a SecretStr filled from `${ENV}` and never printed.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any, Literal

import httpx
from pydantic import BaseModel, ConfigDict, SecretStr

from provisioner.engine.kit.http import ClientCredentials, RenewingBearer

log = logging.getLogger("provisioner.auth")


class AuthConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: Literal["none", "bearer", "basic", "header", "oauth_client_credentials", "oauth_refresh_token"] = "none"
    token: SecretStr | None = None  # bearer token, or the header's value
    username: SecretStr | None = None  # basic: often an API key
    password: SecretStr = SecretStr("")
    header: str = "Authorization"  # for type header, e.g. X-Api-Key
    token_url: str | None = None  # oauth_*
    client_id: str | None = None
    client_secret: SecretStr | None = None
    scope: str | None = None
    refresh_token: SecretStr | None = None  # oauth_refresh_token: the first one; later ones rotate
    # oauth_refresh_token: where a rotated refresh token is kept across restarts (mode 0600)
    token_file: Path | None = None
    client_auth: Literal["body", "basic"] = "body"  # how client id/secret reach the token endpoint


def build_auth(config: AuthConfig) -> tuple[httpx.Auth | None, dict[str, str]]:
    """The httpx auth and extra headers a config describes; raises ValueError naming a missing key."""

    def need(*keys: str) -> None:
        missing = [k for k in keys if getattr(config, k) in (None, "")]
        if missing:
            raise ValueError(f"auth type {config.type} needs {', '.join(missing)}")

    if config.type == "none":
        return None, {}
    if config.type == "basic":
        need("username")
        return httpx.BasicAuth(_reveal(config.username), _reveal(config.password)), {}
    if config.type == "bearer":
        need("token")
        return None, {"Authorization": f"Bearer {_reveal(config.token)}"}
    if config.type == "header":
        need("token")
        return None, {config.header: _reveal(config.token)}
    need("token_url", "client_id", "client_secret")
    if config.type == "oauth_client_credentials":
        return ClientCredentials(
            str(config.token_url),
            str(config.client_id),
            _reveal(config.client_secret),
            config.scope,
            basic=config.client_auth == "basic",
        ), {}
    need("refresh_token")
    return RefreshToken(config), {}


class RefreshToken(RenewingBearer):
    """OAuth 2.0 refresh-token grant (RFC 6749 §6) for providers whose refresh tokens rotate
    (Lever: access tokens live an hour, each exchange returns a new refresh token and voids the old).

    The newest refresh token is written to `token_file` before it is used, so a restart does not
    fall back to the voided one from the config.
    """

    refused = "the token endpoint refused the refresh token"

    def __init__(self, config: AuthConfig, margin: float = 60.0):
        super().__init__(margin)
        self.config = config
        self.token_url = str(config.token_url or "")
        self._refresh = self._load() or _reveal(config.refresh_token)

    def _load(self) -> str | None:
        path = self.config.token_file
        return path.read_text().strip() or None if path and path.is_file() else None

    def _save(self, token: str) -> None:
        path = self.config.token_file
        if path is None:
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(token)

    def _token_request(self) -> httpx.Request:
        form = {
            "grant_type": "refresh_token",
            "refresh_token": self._refresh,
            "client_id": self.config.client_id,
            "client_secret": _reveal(self.config.client_secret),
        }
        return httpx.Request("POST", str(self.config.token_url), data=form, headers={"Accept": "application/json"})

    def _accepted(self, body: dict[str, Any]) -> None:
        rotated = body.get("refresh_token")
        if rotated and rotated != self._refresh:
            self._refresh = str(rotated)
            self._save(self._refresh)
            log.info("refresh token rotated%s", f"; kept in {self.config.token_file}" if self.config.token_file else "")


def _reveal(secret: SecretStr | None) -> str:
    """A secret's value for the one request that sends it; `need` has already refused a missing one."""
    return secret.get_secret_value() if secret is not None else ""
