"""Auth schemes as configured components, shared by source connectors and the REST writer.

One small model per scheme, chosen by `type` and validated when the config is loaded (a scheme
missing its key is refused there, at that key); each gives what an httpx client needs. Every secret
is a SecretStr filled from `${ENV}`: its repr, its errors and the config's dumps never show it.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from typing import Annotated, Literal

import httpx
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, SecretStr, model_validator

from provisioner.engine.kit.oauth import ClientCredentials, RefreshToken
from provisioner.engine.kit.saml import SamlBearer, check_signing_key
from provisioner.engine.kit.tagged import default_tag

Secret = Annotated[SecretStr, Field(min_length=1)]
Text = Annotated[str, Field(min_length=1)]


class _Scheme(BaseModel, ABC):
    model_config = ConfigDict(extra="forbid")

    @abstractmethod
    def for_httpx(self) -> tuple[httpx.Auth | None, dict[str, str]]:
        """The httpx auth and the extra headers of a client using this scheme."""


class NoAuth(_Scheme):
    type: Literal["none"] = "none"

    def for_httpx(self) -> tuple[httpx.Auth | None, dict[str, str]]:
        return None, {}


class BasicAuth(_Scheme):
    type: Literal["basic"] = "basic"
    username: Secret  # often an API key
    password: SecretStr = SecretStr("")

    def for_httpx(self) -> tuple[httpx.Auth | None, dict[str, str]]:
        return httpx.BasicAuth(self.username.get_secret_value(), self.password.get_secret_value()), {}


class BearerAuth(_Scheme):
    type: Literal["bearer"] = "bearer"
    token: Secret

    def for_httpx(self) -> tuple[httpx.Auth | None, dict[str, str]]:
        return None, {"Authorization": f"Bearer {self.token.get_secret_value()}"}


class HeaderAuth(_Scheme):
    """A key in a header of the vendor's choosing, e.g. X-Api-Key."""

    type: Literal["header"] = "header"
    token: Secret  # the header's value
    header: Text = "Authorization"

    def for_httpx(self) -> tuple[httpx.Auth | None, dict[str, str]]:
        return None, {self.header: self.token.get_secret_value()}


class ClientCredentialsAuth(_Scheme):
    type: Literal["oauth_client_credentials"] = "oauth_client_credentials"
    token_url: Text
    client_id: Text
    client_secret: Secret
    scope: str | None = None
    client_auth: Literal["body", "basic"] = "body"  # how client id/secret reach the token endpoint

    def for_httpx(self) -> tuple[httpx.Auth | None, dict[str, str]]:
        secret = self.client_secret.get_secret_value()
        basic = self.client_auth == "basic"
        return ClientCredentials(self.token_url, self.client_id, secret, self.scope, basic=basic), {}


class RefreshTokenAuth(_Scheme):
    type: Literal["oauth_refresh_token"] = "oauth_refresh_token"
    token_url: Text
    client_id: Text
    client_secret: Secret
    refresh_token: Secret  # the first one; later ones rotate
    # where a rotated refresh token is kept across restarts (mode 0600)
    token_file: Path | None = None

    def for_httpx(self) -> tuple[httpx.Auth | None, dict[str, str]]:
        grant = RefreshToken(
            self.token_url,
            self.client_id,
            self.client_secret.get_secret_value(),
            self.refresh_token.get_secret_value(),
            self.token_file,
        )
        return grant, {}


class SamlBearerAuth(_Scheme):
    """OAuth 2.0 SAML 2.0 bearer assertion grant (RFC 7522), the assertion signed with `private_key`
    (PEM) for `user_id`; `form` adds the provider's own token-request fields (company_id)."""

    type: Literal["oauth_saml_bearer"] = "oauth_saml_bearer"
    token_url: Text
    client_id: Text
    user_id: Text
    private_key: Secret
    certificate: str | None = None  # PEM, sent in the signature's KeyInfo
    audience: Text
    form: dict[str, str] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _signs(self) -> SamlBearerAuth:
        check_signing_key(self.private_key.get_secret_value(), self.certificate)
        return self

    def for_httpx(self) -> tuple[httpx.Auth | None, dict[str, str]]:
        grant = SamlBearer(
            self.token_url,
            self.client_id,
            self.user_id,
            self.private_key.get_secret_value(),
            audience=self.audience,
            certificate=self.certificate,
            form=self.form,
        )
        return grant, {}


AuthScheme = NoAuth | BasicAuth | BearerAuth | HeaderAuth | ClientCredentialsAuth | RefreshTokenAuth | SamlBearerAuth


# The config's `auth:` block: one of the schemes above, chosen by `type`; none without it.
AuthConfig = Annotated[AuthScheme, Field(discriminator="type"), BeforeValidator(default_tag("type", "none"))]
