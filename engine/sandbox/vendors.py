"""The sandbox: every vendor emulator on one port, and a config that points the connectors at it."""

from __future__ import annotations

from typing import Any

from starlette.applications import Starlette
from starlette.routing import Mount

from provisioner.sources import emulated_types, emulator

# Fixed credentials, so examples/hris-and-ats.yaml works against the sandbox as documented.
FIXED_CREDENTIALS: dict[str, dict[str, str]] = {
    "bamboohr": {"api_key": "sandbox-bamboohr-key"},
    "workday": {"password": "sandbox-workday-password"},
}

SANDBOX_CONFIG = """\
sources:
  - name: bamboohr
    type: bamboohr
    base_url: {url}/bamboohr/api/gateway.php/acme
    api_key: {bamboohr}
  - name: workday
    type: workday
    base_url: {url}/workday/ccx/service/acme/Human_Resources/v40.0
    username: {workday_user}
    password: {workday_password}
  - name: lever
    type: lever
    base_url: {url}/lever/v1
    api_key: {lever}
    webhook_secret: {lever_secret}
  - name: workable
    type: workable
    base_url: {url}/workable/spi/v3
    token: {workable}               # an OAuth token: 50 requests per 10 s (an account token gets 10)
    rate_limit: 50/10.5s
    webhook_secret: {workable_secret}
  - name: greenhouse
    type: greenhouse
    base_url: {url}/greenhouse
    client_id: {gh_id}
    client_secret: {gh_secret}
    token_url: {url}/greenhouse/token
    webhook_secret: {gh_secret_hook}
"""


def sandbox_app(people: int = 25) -> tuple[Starlette, dict[str, Any]]:
    """Every vendor emulator mounted under /<vendor>, seeded with fake people."""
    states = {kind: emulator(kind).State(**FIXED_CREDENTIALS.get(kind, {})) for kind in emulated_types()}
    for state in states.values():
        state.seed(people)
    routes = [Mount(f"/{kind}", app=emulator(kind).create_app(state)) for kind, state in states.items()]
    return Starlette(routes=routes), states


def sandbox_config(url: str, states: dict[str, Any]) -> str:
    s = states
    return SANDBOX_CONFIG.format(
        url=url,
        bamboohr=s["bamboohr"].api_key,
        workday_user=s["workday"].username,
        workday_password=s["workday"].password,
        lever=s["lever"].api_key,
        lever_secret=s["lever"].webhook_secret,
        workable=s["workable"].oauth_token,
        workable_secret=s["workable"].webhook_secret,
        gh_id=s["greenhouse"].client_id,
        gh_secret=s["greenhouse"].client_secret,
        gh_secret_hook=s["greenhouse"].webhook_secret,
    )
