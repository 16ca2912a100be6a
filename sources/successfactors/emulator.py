"""A SAP SuccessFactors emulator: the Employee Central OData v2 API over real HTTP.

What it reproduces, from SAP's knowledge base and Microsoft's SuccessFactors integration pages:
- `/odata/v2/PerPerson`, `EmpEmployment`, `User`, `EmpJob`, `PerEmail`, `Picklist('ecEmailType')`
  as `{"d": {"results": [...], "__next": "...$skiptoken=..."}}`, `$format=json`, `$expand`
  (a navigation not expanded is `__deferred`), `$filter` (query.py), `$top`; server-side paging
  through `__next` with `customPageSize` (at most 1,000 records a page) and `paging=snapshot`, whose
  keys are fixed at the first page (https://userapps.support.sap.com/sap/support/knowledge/en/2723468,
  https://userapps.support.sap.com/sap/support/knowledge/en/3308165).
- Effective dating: expanded or listed EmpJob slices are those in effect on `asOfDate` (today by
  default); `fromDate`/`toDate` return the slices overlapping that range, filtering the top-level
  entity only; both at once is an error
  (https://apps.support.sap.com/sap/support/knowledge/en/2853045,
  https://userapps.support.sap.com/sap/support/knowledge/en/2148752).
- Dates `/Date(ms)/` and `/Date(ms+0000)/` (odata.py); picklists as option ids plus
  PicklistOption navigations (entities.py).
- `POST /odata/v2/upsert`: HTTP 200 with a status per record, a refused record inside it
  (https://userapps.support.sap.com/sap/support/knowledge/en/3386831); `isPrimary` required, one
  primary email per person.
- Auth: Basic `username@companyId`; OAuth 2.0 SAML bearer at `/oauth/token` (company_id, client_id,
  grant_type, assertion, verified against the client's X.509 certificate) and the `/oauth/idp`
  helper that signs an assertion for a user_id with a posted private key.
- Errors as OData error bodies: 400 COE_ENTITY_NOT_FOUND / COE_PROPERTY_NOT_FOUND, 401, 403, 503
  maintenance (https://userapps.support.sap.com/sap/support/knowledge/en/2545055). Rate limiting is
  announced but postponed; a 429 carries Retry-After (SAP recommends retrying after 300 s;
  https://userapps.support.sap.com/sap/support/knowledge/en/3159263); `retry_after` here is 1 s so
  tests stay quick. Codes of the 401/403 bodies are not documented publicly: ours are named plainly.
"""

from __future__ import annotations

import base64
import secrets
import urllib.parse
from collections.abc import Callable
from datetime import date
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from provisioner.sources.emulation import admin_routes
from provisioner.sources.successfactors.entities import EMAIL_TYPES, Writer, select
from provisioner.sources.successfactors.oauth_emulation import oauth_routes
from provisioner.sources.successfactors.odata import error_body
from provisioner.sources.successfactors.query import FilterError, compile_filter
from provisioner.sources.successfactors.state import SuccessFactorsState

MAX_PAGE = 1000  # records in one page at most


def _error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(error_body(code, message), status_code=status, headers=headers)


def _as_of(request: Request) -> tuple[date | None, tuple[date, date] | None]:
    q = request.query_params
    if "asOfDate" in q and ("fromDate" in q or "toDate" in q):
        raise FilterError("asOfDate cannot be used together with fromDate or toDate")
    if "fromDate" in q or "toDate" in q:
        return None, (
            date.fromisoformat(q.get("fromDate", "1900-01-01")),
            date.fromisoformat(q.get("toDate", "9999-12-31")),
        )
    return date.fromisoformat(q["asOfDate"]) if "asOfDate" in q else date.today(), None


Query = tuple[date | None, tuple[date, date] | None, Callable[[dict[str, Any]], bool], set[str]]


def _query(request: Request, prefix: str = "") -> Query | JSONResponse:
    """A listing's options as SF reads them: as-of date or span, `$filter`, `$expand` (under
    `prefix`); a 400 as SF words it when they cannot be read."""
    q = request.query_params
    try:
        as_of, span = _as_of(request)
        test = compile_filter(q.get("$filter"))
    except (FilterError, ValueError) as exc:
        return _error(400, "COE_PROPERTY_NOT_FOUND", f"[COE0019]{exc}")
    return as_of, span, test, {prefix + e.strip() for e in q.get("$expand", "").split(",") if e.strip()}


def create_app(state: SuccessFactorsState) -> Starlette:
    def refused(request: Request) -> Response | None:
        if (status := state.faults.take()) is not None:
            message = (
                "The Successfactors HCM suite is currently undergoing scheduled maintenance"
                if status == 503
                else "Internal Server Error"
            )
            return _error(status, "COE_GENERAL_SERVER_FAILURE", message)
        if not state.gate.admit():
            return _error(429, "COE_TOO_MANY_REQUESTS", "Too Many Requests", {"Retry-After": str(state.retry_after)})
        scheme, _, value = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() == "bearer" and value in state.tokens:
            pass
        elif scheme.lower() == "basic":
            try:
                user, _, password = base64.b64decode(value).decode().partition(":")
            except (ValueError, UnicodeDecodeError):
                user, password = "", ""
            if user != f"{state.username}@{state.company_id}" or not secrets.compare_digest(
                password.encode(), state.password.encode()
            ):
                return _error(
                    401,
                    "AUTHENTICATION_FAILED",
                    "Authentication failed. You have entered an incorrect username or password (status code = 4).",
                )
        else:
            return _error(401, "AUTHENTICATION_FAILED", "Authentication credentials are required.")
        if state.denied(request.url.path + "?" + str(request.query_params)):
            return _error(403, "PERMISSION_DENIED", "The user does not have permission to read this entity")
        return None

    def root(request: Request) -> str:
        return str(request.url.replace(query="")).split("/odata/v2/")[0] + "/odata/v2"

    def page(request: Request, keys: list[str], render: Any) -> Response:
        """One page of `keys`, fixed at the first page (snapshot paging), with `__next` when more."""
        q = request.query_params
        size = min(int(q.get("customPageSize") or q.get("$top") or MAX_PAGE), MAX_PAGE)
        token = q.get("$skiptoken")
        if token:
            try:
                snap, offset = base64.urlsafe_b64decode(token.encode()).decode().split(":")
                keys, start = state.snapshots[snap], int(offset)
            except (ValueError, KeyError):
                return _error(400, "COE_BAD_REQUEST", "Invalid $skiptoken")
        else:
            snap, start = secrets.token_hex(6), 0
            state.snapshots[snap] = keys
        fields = q.get("$select")
        rows = [select(r, fields) for k in keys[start : start + size] if (r := render(k)) is not None]
        body: dict[str, Any] = {"results": rows}
        if start + size < len(keys):
            token = base64.urlsafe_b64encode(f"{snap}:{start + size}".encode()).decode()
            params = [(k, v) for k, v in q.multi_items() if k != "$skiptoken"] + [("$skiptoken", token)]
            query = urllib.parse.urlencode(params, safe="$,/'()=")
            body["__next"] = str(request.url.replace(query=query))
        return JSONResponse({"d": body})

    def people(request: Request) -> Response:
        if (denied := refused(request)) is not None:
            return denied
        if isinstance(read := _query(request), JSONResponse):
            return read
        as_of, _span, test, expand = read
        q = request.query_params
        everything = Writer(root(request), None, None, state.people)
        # PerPerson is not effective-dated: its expansions are as of today unless asOfDate says otherwise
        view = Writer(root(request), expand, as_of or date.today(), state.people)
        with state.lock:
            if q.get("$skiptoken"):
                keys = []
            else:
                keys = [pid for pid in sorted(state.people) if test(everything.person(state.people[pid]))]
            return page(request, keys, lambda pid: view.person(state.people[pid]) if pid in state.people else None)

    def jobs(request: Request) -> Response:
        if (denied := refused(request)) is not None:
            return denied
        if isinstance(read := _query(request), JSONResponse):
            return read
        as_of, span, test, expand = read
        writer = Writer(root(request), expand, as_of, state.people)
        found: dict[str, dict[str, Any]] = {}
        with state.lock:
            for person in state.people.values():
                for employment in person["employments"]:
                    for s in writer.slices(employment):
                        if span is not None:
                            keep = str(s["startDate"]) <= span[1].isoformat() and s["endDate"] >= span[0].isoformat()
                        else:
                            keep = s in writer.in_effect([s], as_of)
                        entity = writer.job(employment["userId"], s, "") if keep else None
                        if entity is not None and test(entity):
                            found[f"{employment['userId']}|{s['startDate']}"] = entity
        return page(request, sorted(found), found.get)

    def listing(prefix: str, build: Callable[[Writer, dict[str, Any], dict[str, Any]], dict[str, Any]]) -> Any:
        """EmpEmployment or User, one per employment; their navigations are the same entities'
        under PerPerson, so `$expand` is read under that prefix."""

        def handler(request: Request) -> Response:
            if (denied := refused(request)) is not None:
                return denied
            if isinstance(read := _query(request, prefix), JSONResponse):
                return read
            as_of, _span, test, expand = read
            writer = Writer(root(request), expand | {prefix.rstrip("/")}, as_of or date.today(), state.people)
            with state.lock:
                rows = {
                    e["userId"]: entity
                    for p in state.people.values()
                    for e in p["employments"]
                    if test(entity := build(writer, p, e))
                }
            return page(request, sorted(rows), rows.get)

        return handler

    def emails(request: Request) -> Response:
        if (denied := refused(request)) is not None:
            return denied
        key = request.path_params.get("key")
        writer = Writer(root(request), set(), None, state.people)
        with state.lock:
            rows = [
                writer.email(p, code, held) for p in state.people.values() for code, held in sorted(p["emails"].items())
            ]
        if key is not None:
            wanted = dict(part.split("=", 1) for part in key.split(","))
            match = [
                r
                for r in rows
                if f"'{r['emailType']}'" == wanted.get("emailType")
                and f"'{r['personIdExternal']}'" == wanted.get("personIdExternal")
            ]
            if not match:
                return _error(404, "COE_RESOURCE_NOT_FOUND", f"[COE0018]No entity found for PerEmail({key})")
            return JSONResponse({"d": match[0]})
        try:
            test = compile_filter(request.query_params.get("$filter"))
        except FilterError as exc:
            return _error(400, "COE_PROPERTY_NOT_FOUND", f"[COE0019]{exc}")
        return JSONResponse({"d": {"results": [r for r in rows if test(r)]}})

    def picklist(request: Request) -> Response:
        if (denied := refused(request)) is not None:
            return denied
        if request.path_params["name"] != "ecEmailType":
            return _error(404, "COE_RESOURCE_NOT_FOUND", "[COE0018]No entity found")
        options = [{"id": i, "externalCode": c, "localeLabel": label} for c, (i, label) in EMAIL_TYPES.items()]
        return JSONResponse({"d": {"id": "ecEmailType", "picklistOptions": {"results": options}}})

    async def upsert(request: Request) -> Response:
        if (denied := refused(request)) is not None:
            return denied
        body = await request.json()
        outcomes = [state.upsert_email(n, item) for n, item in enumerate(body if isinstance(body, list) else [body])]
        return JSONResponse({"d": outcomes})

    def unknown(request: Request) -> Response:
        if (denied := refused(request)) is not None:
            return denied
        entity = request.path_params["entity"]
        return _error(400, "COE_ENTITY_NOT_FOUND", f"[COE0007]invalid entity (or function) name: {entity}")

    return Starlette(
        routes=[
            Route("/odata/v2/PerPerson", people),
            Route("/odata/v2/EmpJob", jobs),
            Route("/odata/v2/EmpEmployment", listing("employmentNav/", lambda w, p, e: w.employment(p, e))),
            Route(
                "/odata/v2/User", listing("employmentNav/userNav/", lambda w, p, e: w.user(e, "employmentNav/userNav/"))
            ),
            Route("/odata/v2/PerEmail", emails),
            Route("/odata/v2/PerEmail({key})", emails),
            Route("/odata/v2/Picklist('{name}')", picklist),
            Route("/odata/v2/upsert", upsert, methods=["POST"]),
            Route("/odata/v2/{entity}", unknown),
            *oauth_routes(state),
            *admin_routes(state),
        ]
    )


State = SuccessFactorsState  # the name the sandbox and tests look for in every vendor emulator

# What `provisioner sandbox` serves and prints for this vendor (engine/sandbox names no vendor).
SANDBOX_CREDENTIALS = {"password": "sandbox-successfactors-password"}
SANDBOX_RANK = 3


def sandbox_settings(url: str, state: SuccessFactorsState) -> str:
    """This vendor's settings in the sandbox config (YAML lines), its emulator mounted at `url`."""
    return f"""\
    base_url: {url}
    company_id: {state.company_id}
    username: {state.username}
    password: {state.password}
"""
