"""SCIM 2.0 protocol pieces shared by the writer: schemas, settings, errors (RFC 7643 / 7644)."""

from __future__ import annotations

import logging
from typing import Any

import httpx
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError

from provisioner.engine.contracts.models import Outcome, Result, ResultStatus, elapsed_ms
from provisioner.engine.contracts.profile import Unapplied
from provisioner.engine.contracts.protocols import LeaseBusy
from provisioner.engine.kit.auth import AuthConfig, BearerAuth, NoAuth
from provisioner.engine.kit.http import describe_http_error, is_transient
from provisioner.engine.kit.limits import MAX_PAGES
from provisioner.targets.mapping import Path
from provisioner.targets.scim_models import error_model, group_model, patch_model, patch_operation_model

log = logging.getLogger("provisioner.scim")

USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
PATCH_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
SCIM_JSON = "application/scim+json, application/json"

DEFAULT_MAPPING = {
    "userName": "{{ worker.work_email or worker.username or worker.id }}",
    "externalId": "{{ worker.id }}",
    "name.givenName": "{{ worker.preferred_name or worker.first_name or '' }}",
    "name.familyName": "{{ worker.last_name or '' }}",
    "displayName": (
        "{{ worker.display_name or ((worker.preferred_name or worker.first_name or '')"
        " ~ ' ' ~ (worker.last_name or '')) }}"
    ),
    'emails[type eq "work"].value': "{{ worker.work_email or '' }}",
    "title": "{{ worker.title or '' }}",
    f"{ENTERPRISE}:employeeNumber": "{{ worker.employee_number or '' }}",
    f"{ENTERPRISE}:department": "{{ worker.department or '' }}",
    f"{ENTERPRISE}:manager.value": "{{ worker.manager_id or '' }}",  # written as the manager's account id
}

# Below this many lookups in a batch, one filter query each is cheaper than listing the target.
PRIME_THRESHOLD = 25
INDEX_TTL = 60.0


class ScimSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    create_groups: bool = True
    # Resources asked per listing page; unset: as many as the app announces it serves (scim_listing.page_size).
    page_size: int | None = Field(default=None, ge=1)
    max_pages: int = Field(default=MAX_PAGES, ge=1)  # a listing that passes it is refused (a lying totalResults)
    bulk: bool = True  # use /Bulk for creates when the server offers it
    bulk_max_operations: int = 100
    match_email: bool = False  # also adopt an account whose email is the worker's work email
    auth: AuthConfig = Field(default_factory=NoAuth)  # the REST writer's schemes; `token:` is bearer


def auth_of(settings: ScimSettings, token: SecretStr | None) -> tuple[httpx.Auth | None, dict[str, str]]:
    """`token:` is the shorthand for a bearer `auth:` block; giving both is a mistake worth naming.
    An empty one (`${SCIM_TOKEN:-}` unset, as the examples write it for local apps) is no token."""
    if token is not None and not token.get_secret_value():
        token = None
    if token is not None and settings.auth.type != "none":
        raise ValueError("give either token (a bearer token) or an auth block, not both")
    return (BearerAuth(token=token) if token is not None else settings.auth).for_httpx()


def patch_body(resource: str, operations: list[dict[str, Any]]) -> dict[str, Any]:
    """A PatchOp message (RFC 7644 §3.5.2) checked by scim2-models against the core and enterprise
    schemas. A mapping may name an attribute of the app's own extension, which those schemas do
    not know: that body goes out as given."""
    operation = patch_operation_model()
    try:
        message = patch_model(resource)(operations=[operation.model_validate(op) for op in operations])
    except ValidationError:
        return {"schemas": [PATCH_SCHEMA], "Operations": operations}
    return message.model_dump(mode="json", by_alias=True, exclude_none=True)


def new_group(name: str) -> dict[str, Any]:
    """With `"members": []` spelt out: the dump leaves an empty list out, and some apps require the field."""
    group = group_model()(display_name=name).model_dump(mode="json", by_alias=True, exclude_none=True)
    return {**group, "members": []}


def patch_refused(exc: Exception) -> bool:
    """The server has PATCH, but not for this change: 501, or a 400 naming the path or mutability
    (django-scim2 and others implement only part of RFC 7644 §3.5.2)."""
    if not isinstance(exc, ScimError):
        return False
    return exc.status == 501 or (exc.status == 400 and exc.scim_type in ("invalidPath", "mutability"))


def advertised_attributes(schemas: list[dict[str, Any]]) -> set[str]:
    """Attribute names as /Schemas announces them, lower-cased; extension ones behind their URN."""
    names = set()
    for schema in schemas:
        urn = str(schema.get("id") or "")
        core = urn in (USER_SCHEMA, "urn:ietf:params:scim:schemas:core:2.0:Group")
        for attribute in schema.get("attributes") or []:
            name = str(attribute.get("name") or "").lower()
            names.add(name if core else f"{urn.lower()}:{name}")
    return names


def root_attribute(path: str) -> str:
    parsed = Path.parse(path)
    return f"{parsed.urn.lower()}:{parsed.attr.lower()}" if parsed.urn else parsed.attr.lower()


def dropped(sent: dict[str, Any], returned: dict[str, Any]) -> tuple[set[str], set[str]]:
    """(paths sent with a value that the answer leaves out, paths it kept), for a full resource."""
    gone: set[str] = set()
    kept: set[str] = set()
    for path, value in sent.items():
        if value in (None, "") or path == "active":
            continue
        (kept if Path.parse(path).get(returned) not in (None, "") else gone).add(path)
    return gone, kept


def not_applied(sent: dict[str, Any], returned: dict[str, Any], not_kept: set[str]) -> list[str]:
    """What the app holds differently from what was sent (an attribute it answers without is not
    kept, a lesson rather than a failure): "title (sent 'A', app holds 'B')"."""
    wrong = []
    for path, value in sent.items():
        if path in not_kept:
            continue
        held = returned.get("active", True) is not False if path == "active" else Path.parse(path).get(returned)
        if value in (None, "") and held in (None, ""):
            continue
        if held in (None, "") and path != "active":
            continue  # answered without it: judged by `dropped`
        if not _same(path, held, value):
            wrong.append(f"{path} (sent {value!r}, app holds {held!r})")
    return wrong


def _same(path: str, held: Any, sent: Any) -> bool:
    # userName is caseExact=false (RFC 7643 §4.1.1) and apps commonly lower-case email addresses
    if isinstance(held, str) and isinstance(sent, str) and (path == "userName" or path.startswith("emails")):
        return held.lower() == sent.lower()
    return bool(held == sent)


class ScimError(Exception):
    """An error answer from the service provider, parsed with scim2-models' Error schema."""

    def __init__(self, status: int, scim_type: str | None, detail: str):
        super().__init__(f"SCIM error {status}{' ' + scim_type if scim_type else ''}: {detail}")
        self.status = status
        self.scim_type = scim_type


class Unconfirmed(Exception):
    """A write whose effect could not be read back (a group too large to read, and no other way
    the app is known to answer right): a failure, for it may or may not have happened."""


def refused_as_invalid(error: str | None) -> bool:
    """Whether a failure's error is the app refusing the request as such (a 400: its content, not
    the moment), as ScimError words it."""
    return (error or "").startswith("SCIM error 400")


def raise_for_scim(response: httpx.Response) -> None:
    if response.status_code < 400:
        return
    scim_type, detail = None, response.reason_phrase
    try:
        error = error_model().model_validate(response.json())
        scim_type, detail = error.scim_type, error.detail or detail
    except ValueError:
        detail = describe_http_error(response)
    raise ScimError(response.status_code, scim_type, detail)


def failure(start: float, error: str, account_id: str | None = None) -> Result:
    return Result(status=ResultStatus.failure, account_id=account_id, error=error, duration_ms=elapsed_ms(start))


def failed(start: float, exc: Exception, account_id: str | None = None) -> Result:
    """A failure Result for an error the call raised, saying whether trying later may help."""
    result = failure(start, scim_error(exc), account_id)
    result.transient = is_transient(exc)
    result.outcome = Outcome.not_applied if isinstance(exc, Unapplied) else None
    return result


def scim_error(exc: Exception) -> str:
    worded = isinstance(exc, ScimError | Unapplied | Unconfirmed | LeaseBusy)
    return str(exc) if worded else f"{type(exc).__name__}: {exc}"


def is_conflict(exc: Exception) -> bool:
    # RFC 7644 says 409 uniqueness; some servers answer 400 with scimType uniqueness.
    return isinstance(exc, ScimError) and (exc.scim_type == "uniqueness" or exc.status == 409)


ERRORS = (ScimError, Unapplied, Unconfirmed, LeaseBusy, httpx.HTTPError)
