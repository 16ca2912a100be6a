"""Writing the work email back to SuccessFactors: `POST /odata/v2/upsert` of a PerEmail whose
`emailType` is the `ecEmailType` picklist option with external code B (business), as Microsoft's
SuccessFactors Writeback app does
(https://learn.microsoft.com/en-us/entra/identity/saas-apps/sap-successfactors-writeback-tutorial).

The upsert answers HTTP 200 with a status per record (`OK`/`ERROR`, `httpCode`, `message`), so a
refusal hides inside a 200 (https://userapps.support.sap.com/sap/support/knowledge/en/3386831);
`isPrimary` must be sent, and a person has one primary email, so the business email stays primary
if it was, and becomes primary only when no other email is. The value counts as written when one
read-back of that PerEmail shows it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from provisioner.engine.contracts.protocols import SourceError, WritebackRefused
from provisioner.engine.kit.http import describe_http_error
from provisioner.sources.successfactors.odata import error_text, results

if TYPE_CHECKING:
    from provisioner.sources.successfactors.connector import SuccessFactorsSource

SUPPORTED = {"work_email"}


def _quote(value: str) -> str:
    return value.replace("'", "''")


async def _get(source: SuccessFactorsSource, path: str, params: dict[str, Any]) -> Any:
    response = await source.client.get(path, params={"$format": "json", **params})
    if response.status_code != 200:
        raise _failure(source, response)
    return response.json().get("d")


def _failure(source: SuccessFactorsSource, response: Any) -> SourceError:
    said = error_text(response) if response.content else describe_http_error(response)
    where = f"source {source.name}: SAP SuccessFactors"
    if 400 <= response.status_code < 500 and response.status_code != 429:
        return WritebackRefused(f"{where} refused the write (HTTP {response.status_code}): {said}")
    return SourceError(f"{where} could not take the write (HTTP {response.status_code}): {said}")


async def business_email_type(source: SuccessFactorsSource) -> str:
    """The option id of the business email type in this instance (8448 in SAP's examples)."""
    picklist = await _get(source, "/odata/v2/Picklist('ecEmailType')", {"$expand": "picklistOptions"})
    for option in results((picklist or {}).get("picklistOptions")):
        if option.get("externalCode") == "B":
            return str(option["id"])
    raise WritebackRefused(f"source {source.name}: the ecEmailType picklist has no business (B) option")


async def write_email(
    source: SuccessFactorsSource, remote_id: str, values: Mapping[str, str], email_type: str | None
) -> str:
    """Upsert the work email; returns the business email type id for the next call."""
    unknown = set(values) - SUPPORTED
    if unknown:
        raise WritebackRefused(f"source {source.name}: SAP SuccessFactors writeback takes only work_email here")
    if "work_email" not in values:
        return email_type or ""
    email_type = email_type or await business_email_type(source)
    person = _quote(remote_id)
    held = results(await _get(source, "/odata/v2/PerEmail", {"$filter": f"personIdExternal eq '{person}'"}))
    mine = next((e for e in held if str(e.get("emailType")) == email_type), None)
    others_primary = any(str(e.get("isPrimary")).lower() == "true" for e in held if e is not mine)
    primary = bool(mine and str(mine.get("isPrimary")).lower() == "true") or not others_primary
    key = f"PerEmail(emailType='{email_type}',personIdExternal='{person}')"
    body = [
        {
            "__metadata": {"uri": key, "type": "SFOData.PerEmail"},
            "personIdExternal": remote_id,
            "emailType": email_type,
            "emailAddress": values["work_email"],
            "isPrimary": primary,
        }
    ]
    response = await source.client.post("/odata/v2/upsert", params={"$format": "json"}, json=body)
    if response.status_code != 200:
        raise _failure(source, response)
    answered = response.json().get("d")  # a list of per-record outcomes
    for outcome in (answered if isinstance(answered, list) else results(answered)) or [{}]:
        if outcome.get("status") != "OK":
            raise WritebackRefused(
                f"source {source.name}: SAP SuccessFactors refused the work email of {remote_id}: "
                f"{outcome.get('message') or 'no status in the answer'}"
            )
    stored = await _get(source, f"/odata/v2/{key}", {})
    if (stored or {}).get("emailAddress") != values["work_email"]:
        raise SourceError(f"source {source.name}: SAP SuccessFactors answered OK but does not hold the work email")
    return email_type
