"""One harness per vendor connector, so every connector runs the same contract tests against its
emulator over real HTTP: how to configure it, make a change, undo a hire, corrupt a record."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from provisioner.sources.adp import emulator as adp
from provisioner.sources.ashby import emulator as ashby
from provisioner.sources.bamboohr import emulator as bamboohr
from provisioner.sources.greenhouse import emulator as greenhouse
from provisioner.sources.lever import emulator as lever
from provisioner.sources.successfactors import emulator as successfactors
from provisioner.sources.workable import emulator as workable
from provisioner.sources.workday import emulator as workday


@dataclass
class Harness:
    type: str
    make_state: Callable[[], Any]
    make_app: Callable[[Any], Any]
    settings: Callable[[str, Any], dict[str, Any]]  # (server url, state) -> good settings
    bad_credentials: dict[str, Any]  # overrides that make the credentials wrong
    change: Callable[[Any, str], None]  # a visible change to one record
    corrupt: Callable[[Any, str], None]  # a record that cannot become a Worker
    webhook: Callable[[Any, str], tuple[bytes, dict[str, str]]] | None = None
    label: str = ""
    scoped_fetch: bool = True  # a single-record fetch knows when a record left scope
    forbid: str | None = None  # a path the credential may lack permission for (403)
    serve: Callable[[Any], Any] | None = None  # (state) -> a running server, when plain serve_asgi will not do

    def __str__(self) -> str:
        return self.label or self.type


FAST = {"backoff": 0.01, "overlap": "0s", "page_size": 3}


def _workable_state() -> workable.WorkableState:
    state = workable.WorkableState()
    state.gate.window = 1.0  # the documented 10 per 10 s, shrunk in time so tests stay quick
    return state


def _greenhouse_state() -> greenhouse.GreenhouseState:
    state = greenhouse.GreenhouseState()
    state.gate.window = 1.0  # the documented 50 per 10 s, shrunk in time as Workable's is
    return state


# The client's pace for that window, with the margin of the connector's own default (50/10.5s).
GREENHOUSE_PACE = {"rate_limit": "50/1.05s"}


# The generic REST source, pointed at Lever's listing purely by configuration.
REST_ON_LEVER = {
    "path": "/opportunities",
    "params": {"archived": "true"},
    "paging": {
        "style": "offset_token",
        "items": "data",
        "next": "next",
        "has_more": "hasNext",
        "param": "offset",
        "limit_param": "limit",
        "limit": 3,
    },
    "id": "id",
    "since": {"param": "updated_at_start", "format": "epoch_ms"},
    "record_path": "/opportunities/{id}",
    "record_item": "data",
    "mapping": {
        "first_name": "{{ record.name.split(' ')[0] }}",
        "last_name": "{{ record.name.split(' ')[1:] | join(' ') }}",
        "personal_email": "{{ record.emails[0] }}",
        "title": "{{ record.headline or 'New hire' }}",
        "department": "{{ record.location }}",
        "country": "{{ record.get('country_code') }}",
        "status": "pending",
    },
}

HARNESSES = [
    Harness(
        "bamboohr",
        bamboohr.EmulatorState,
        bamboohr.create_app,
        lambda url, s: {"base_url": f"{url}/api/gateway.php/acme", "api_key": s.api_key, **FAST},
        {"api_key": "wrong-key"},
        lambda s, rid: s.change(rid, {"jobTitle": "Principal Engineer"}),
        lambda s, rid: s.change(rid, {"hireDate": "31/12/2020"}),
        lambda s, rid: s.webhook("employee.updated", rid),
        forbid="/reports/custom",
    ),
    Harness(
        "lever",
        lever.LeverState,
        lever.create_app,
        lambda url, s: {"base_url": f"{url}/v1", "api_key": s.api_key, **FAST},
        {"api_key": "wrong-key"},
        lambda s, rid: s.change(rid, start_date="2027-02-01"),
        lambda s, rid: s.change(rid, start_date="soon"),
        lambda s, rid: s.webhook("candidateHired", rid),
        forbid="/offers",
    ),
    Harness(
        "workable",
        _workable_state,
        workable.create_app,
        lambda url, s: {"base_url": f"{url}/spi/v3", "token": s.token, "rate_limit": "10/1.05s", **FAST},
        {"token": "wrong-token"},
        lambda s, rid: s.change(rid, firstname="Renamed"),
        lambda s, rid: s.change(rid, updated_at="last tuesday"),
        lambda s, rid: s.webhook("candidate_moved", rid),
        forbid="/jobs/",
    ),
    Harness(
        "greenhouse",
        _greenhouse_state,
        greenhouse.create_app,
        lambda url, s: {
            "base_url": url,
            "client_id": s.client_id,
            "client_secret": s.client_secret,
            "token_url": f"{url}/token",
            **FAST,
            **GREENHOUSE_PACE,
        },
        {"client_secret": "wrong-secret"},
        lambda s, rid: s.change(rid, start_date="2027-02-01"),
        lambda s, rid: s.change(rid, start_date="31/02/2027"),
        lambda s, rid: s.webhook("hire_candidate", rid),
        forbid="/offers/",
    ),
    Harness(
        "greenhouse",
        _greenhouse_state,
        greenhouse.create_app,
        lambda url, s: {"base_url": url, "version": "v1", "api_key": s.api_key, **FAST, **GREENHOUSE_PACE},
        {"api_key": "wrong-key"},
        lambda s, rid: s.change(rid, start_date="2027-02-01"),
        lambda s, rid: s.change(rid, start_date="31/02/2027"),
        lambda s, rid: s.webhook("hire_candidate", rid),
        label="greenhouse-v1",
        forbid="/offers/",
    ),
    Harness(
        "rest",
        lever.LeverState,
        lever.create_app,
        lambda url, s: {
            "base_url": f"{url}/v1",
            "auth": {"type": "basic", "username": s.api_key},
            **FAST,
            **REST_ON_LEVER,
        },
        {"auth": {"type": "basic", "username": "wrong-key"}},
        lambda s, rid: s.change(rid, name="Renamed Person"),
        lambda s, rid: s.change(rid, country_code="Germany"),
        scoped_fetch=False,
        forbid="/opportunities",
    ),
    Harness(
        "workday",
        workday.WorkdayState,
        workday.create_app,
        lambda url, s: {
            "base_url": f"{url}/ccx/service/acme/Human_Resources/v40.0",
            "username": s.username,
            "password": s.password,
            **FAST,
        },
        {"password": "wrong-password"},
        lambda s, rid: s.change(rid, title="Principal Engineer"),
        lambda s, rid: s.change(rid, country="Germany"),
    ),
    Harness(
        "adp",
        lambda: adp.AdpState(key_passphrase="key-passphrase"),
        adp.create_app,
        lambda url, s: {
            "base_url": url,
            "token_url": f"{url}/auth/oauth/v2/token",
            "client_id": s.client_id,
            "client_secret": s.client_secret,
            "cert_file": str(s.tls.client_cert),
            "key_file": str(s.tls.client_key),
            "key_password": s.key_passphrase,
            "ca_file": str(s.tls.ca),
            **FAST,
        },
        {"client_secret": "wrong-secret"},
        lambda s, rid: s.change(rid, job_title="Principal Engineer"),
        lambda s, rid: s.change(rid, hire_date="31/12/2020"),
        forbid="/hr/v2/workers",
        serve=lambda s: s.serve(),  # over TLS, requiring the client certificate (mutual TLS)
    ),
    Harness(
        "ashby",
        ashby.AshbyState,
        ashby.create_app,
        lambda url, s: {"base_url": url, "api_key": s.api_key, **FAST},
        {"api_key": "wrong-key"},
        lambda s, rid: s.change(rid, start_date="2027-02-01"),
        lambda s, rid: s.change(rid, start_date="soon"),
        lambda s, rid: s.webhook("candidateHire", rid),
        forbid="/offer.list",
    ),
    Harness(
        "successfactors",
        successfactors.SuccessFactorsState,
        successfactors.create_app,
        lambda url, s: {
            "base_url": url,
            "company_id": s.company_id,
            "username": s.username,
            "password": s.password,
            **FAST,
        },
        {"password": "wrong-password"},
        lambda s, rid: s.change(rid, title="Principal Engineer"),
        lambda s, rid: s.change(rid, employment_start="soon"),
        forbid="EmpJob",
    ),
]
