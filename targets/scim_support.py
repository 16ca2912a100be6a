"""SCIM 2.0 protocol pieces shared by the writer: schemas, settings, errors (RFC 7643 / 7644)."""

from __future__ import annotations

import httpx
from pydantic import BaseModel, ConfigDict
from scim2_models import Error

from provisioner.engine.contracts.models import Result, ResultStatus, elapsed_ms
from provisioner.engine.kit.http import describe_http_error, is_transient

USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
PATCH_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
BULK_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:BulkRequest"
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
    page_size: int = 200
    bulk: bool = True  # use /Bulk for creates when the server offers it
    bulk_max_operations: int = 100
    match_email: bool = False  # also adopt an account whose email is the worker's work email


class ScimError(Exception):
    """An error answer from the service provider, parsed with scim2-models' Error schema."""

    def __init__(self, status: int, scim_type: str | None, detail: str):
        super().__init__(f"SCIM error {status}{' ' + scim_type if scim_type else ''}: {detail}")
        self.status = status
        self.scim_type = scim_type


def raise_for_scim(response: httpx.Response) -> None:
    if response.status_code < 400:
        return
    scim_type, detail = None, response.reason_phrase
    try:
        error = Error.model_validate(response.json())
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
    return result


def scim_error(exc: Exception) -> str:
    return str(exc) if isinstance(exc, ScimError) else f"{type(exc).__name__}: {exc}"


def is_conflict(exc: Exception) -> bool:
    # RFC 7644 says 409 uniqueness; some servers answer 400 with scimType uniqueness.
    return isinstance(exc, ScimError) and (exc.scim_type == "uniqueness" or exc.status == 409)


ERRORS = (ScimError, httpx.HTTPError)
