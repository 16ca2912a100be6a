"""Auth schemes as configured components: each `auth:` block is the model of its `type`, checked
when the config is loaded, giving an httpx client what it needs, and never showing a secret."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import BaseModel

from provisioner.engine.config import ConfigError, load_config
from provisioner.engine.kit.auth import (
    AuthConfig,
    BasicAuth,
    BearerAuth,
    ClientCredentialsAuth,
    HeaderAuth,
    NoAuth,
    RefreshTokenAuth,
)
from provisioner.engine.kit.oauth import ClientCredentials, RefreshToken
from provisioner.sources import settings_problems
from provisioner.sources.rest.connector import RestSource

pytestmark = pytest.mark.fast

SECRET = "s3cret-value-42"


class Holder(BaseModel):
    auth: AuthConfig = NoAuth()


def scheme(block: dict[str, Any]) -> Any:
    return Holder.model_validate({"auth": block}).auth


@pytest.mark.parametrize(
    ("block", "model"),
    [
        ({}, NoAuth),
        ({"type": "basic", "username": "key"}, BasicAuth),
        ({"type": "basic", "username": "user", "password": SECRET}, BasicAuth),
        ({"type": "bearer", "token": SECRET}, BearerAuth),
        ({"type": "header", "header": "X-Api-Key", "token": SECRET}, HeaderAuth),
        (
            {"type": "oauth_client_credentials", "token_url": "http://a/t", "client_id": "c", "client_secret": SECRET},
            ClientCredentialsAuth,
        ),
        (
            {
                "type": "oauth_refresh_token",
                "token_url": "http://a/t",
                "client_id": "c",
                "client_secret": SECRET,
                "refresh_token": SECRET,
                "token_file": "/tmp/t",
            },
            RefreshTokenAuth,
        ),
    ],
)
def test_an_auth_block_is_the_model_of_its_type_and_hides_its_secrets(block: dict[str, Any], model: type):
    parsed = scheme(block)
    assert type(parsed) is model
    assert SECRET not in repr(parsed) and SECRET not in str(parsed.model_dump())


def test_each_scheme_gives_httpx_what_it_needs():
    auth, headers = scheme({"type": "basic", "username": "key", "password": "pw"}).for_httpx()
    request = next(auth.auth_flow(httpx.Request("GET", "http://a/")))
    assert request.headers["Authorization"] == "Basic " + base64.b64encode(b"key:pw").decode()
    assert headers == {}
    assert scheme({"type": "bearer", "token": SECRET}).for_httpx() == (None, {"Authorization": f"Bearer {SECRET}"})
    assert scheme({"type": "header", "header": "X-Api-Key", "token": SECRET}).for_httpx() == (
        None,
        {"X-Api-Key": SECRET},
    )
    assert scheme({}).for_httpx() == (None, {})
    grant = {"token_url": "http://a/t", "client_id": "c", "client_secret": SECRET}
    credentials, _ = scheme({"type": "oauth_client_credentials", "client_auth": "basic", **grant}).for_httpx()
    assert isinstance(credentials, ClientCredentials) and credentials.basic is not None
    refresh, _ = scheme({"type": "oauth_refresh_token", "refresh_token": "r0", **grant}).for_httpx()
    assert isinstance(refresh, RefreshToken)
    assert b"refresh_token=r0" in refresh._token_request().read()


def test_a_scheme_missing_its_key_or_given_another_schemes_key_is_refused_at_that_key():
    entry = {"base_url": "http://hr.example", "path": "/people", "mapping": {"first_name": "{{ record.n }}"}}
    problems = RestSource.problems({**entry, "auth": {"type": "oauth_client_credentials", "token_url": "http://a/t"}})
    assert sorted(problems) == [
        (("auth", "client_id"), "Field required"),
        (("auth", "client_secret"), "Field required"),
    ]
    assert RestSource.problems({**entry, "auth": {"type": "bearer", "token": "t", "username": "u"}}) == [
        (("auth", "username"), "unknown key 'username'")
    ]
    assert RestSource.problems({**entry, "auth": {"type": "header", "token": "t", "headr": "X-Key"}}) == [
        (("auth", "headr"), "unknown key 'headr' (did you mean 'header'?)")
    ]
    assert RestSource.problems({**entry, "auth": {"type": "baerer", "token": "t"}}) == [
        (
            ("auth", "type"),
            "unknown type 'baerer' (did you mean 'bearer'?); "
            "known: none, basic, bearer, header, oauth_client_credentials, oauth_refresh_token, oauth_saml_bearer",
        )
    ]


def test_an_unset_secret_is_one_problem_and_a_misplaced_one_is_never_shown(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("HR_TOKEN", SECRET)
    monkeypatch.delenv("HR_SECRET", raising=False)
    config = tmp_path / "c.yaml"
    config.write_text(
        "sources:\n"
        "  - name: hr\n"
        "    type: rest\n"
        "    base_url: http://hr.example\n"
        "    path: /people\n"
        "    mapping: {first_name: '{{ record.n }}'}\n"
        "    auth: {type: oauth_client_credentials, token_url: http://a/t, client_id: c,\n"
        "           client_secret: '${HR_SECRET}', client_auth: '${HR_TOKEN}'}\n"
    )
    with pytest.raises(ConfigError) as caught:
        load_config(config, settings_problems)
    messages = [f"{p.line} {p.key}: {p.message}" for p in caught.value.problems]
    assert messages == [
        "8 sources[0].auth.client_auth: source 'hr': Input should be 'body' or 'basic'",
        "8 sources[0].auth.client_secret: environment variable HR_SECRET is not set",
    ]
    assert SECRET not in str(caught.value)
