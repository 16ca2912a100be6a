"""`type: workday` — workers from Workday's Human_Resources `Get_Workers` SOAP operation.

Envelopes are built with lxml (the WSDL cannot be fetched here): WS-Security UsernameToken
(`isu_user@tenant`, PasswordText), `Response_Filter` Page/Count paging (Count ≤ 999) until
`Response_Results/Total_Pages`, and incremental reads through `Transaction_Log_Criteria_Data`
(Updated_From/Through). A termination entered ahead of its date is surfaced as a future
`termination_date`; the policy layer schedules it. Incremental reads ask for both windows Entra
uses: Updated (entered) and Effective (taking effect). Facts: Workday's Get_Workers reference
(https://community.workday.com/sites/default/files/file-hosting/productionapi/Human_Resources/v40.0/Get_Workers.html).
"""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator, Mapping
from datetime import UTC, date, datetime
from typing import Any, cast

import httpx
from lxml import etree
from pydantic import Field, SecretStr

from provisioner.engine.contracts.protocols import SourceError, WritebackRefused
from provisioner.engine.kit.http import RetryPolicy
from provisioner.engine.kit.paging import PagingError
from provisioner.sources.base import HttpSource, HttpSourceSettings
from provisioner.sources.values import employment_type
from provisioner.sources.workday import writeback
from provisioner.sources.workday.soap import NS, el, fault_of, soap_envelope
from provisioner.sources.workday.soap import WSSE as WSSE  # where tests and older imports find it


def envelope(
    username: str,
    password: str,
    version: str,
    *,
    page: int = 1,
    count: int = 100,
    updated: tuple[datetime, datetime] | None = None,
    window: str = "Updated",
    employee_id: str | None = None,
) -> bytes:
    """A Get_Workers_Request: one page of everyone, of those with transactions in a window, or one
    worker. `window` is Updated (entered in the window) or Effective (taking effect in it)."""
    env, body = soap_envelope(username, password)
    request = el(body, "Get_Workers_Request", version=version)
    if employee_id is not None:
        refs = el(request, "Request_References", Skip_Non_Existing_Instances="true")
        el(el(refs, "Worker_Reference"), "ID", employee_id, type="Employee_ID")
    elif updated is not None:
        dates = el(el(el(request, "Request_Criteria"), "Transaction_Log_Criteria_Data"), "Transaction_Date_Range_Data")
        el(dates, f"{window}_From", updated[0].isoformat())
        el(dates, f"{window}_Through", updated[1].isoformat())
    filt = el(request, "Response_Filter")
    el(filt, "Page", str(page))
    el(filt, "Count", str(count))
    group = el(request, "Response_Group")
    for part in (
        "Include_Reference",
        "Include_Personal_Information",
        "Include_Employment_Information",
        "Include_Organizations",
        "Include_Management_Chain_Data",
    ):
        el(group, part, "true")
    return etree.tostring(env, xml_declaration=True, encoding="UTF-8")


@functools.cache
def _compiled(path: str) -> etree.XPath:
    # Compiling an XPath costs more than evaluating it; 20 paths × 10k workers made reads slow.
    return etree.XPath(path, namespaces=NS)


def _WORKERS(root: etree._Element) -> list[etree._Element]:
    return cast(list[etree._Element], _compiled("//wd:Response_Data/wd:Worker")(root))


def _text(node: etree._Element, path: str) -> str | None:
    found = cast(list[Any], _compiled(path)(node))
    value = found[0] if found else None
    if isinstance(value, etree._Element):
        value = value.text
    return str(value).strip() if value is not None and str(value).strip() else None


def worker_record(node: etree._Element) -> dict[str, Any]:
    """The fields we use of one wd:Worker, by the paths Entra's attribute reference documents."""
    data = "wd:Worker_Data/"
    job = data + "wd:Employment_Data/wd:Worker_Job_Data[@wd:Primary_Job='1' or @wd:Primary_Job='true']/"
    status = data + "wd:Employment_Data/wd:Worker_Status_Data/"
    org = (
        data + "wd:Organization_Data/wd:Worker_Organization_Data/wd:Organization_Data[wd:Organization_Type_"
        "Reference/wd:ID[@wd:type='Organization_Type_ID']='{}']/wd:Organization_Name"
    )
    email = (
        data + "wd:Personal_Data/wd:Contact_Data/wd:Email_Address_Data[wd:Usage_Data/wd:Type_Data/"
        "wd:Type_Reference/wd:ID[@wd:type='Communication_Usage_Type_ID']='{}']/wd:Email_Address"
    )
    name = data + "wd:Personal_Data/wd:Name_Data/"
    return {
        "employee_id": _text(
            node, "wd:Worker_Reference/wd:ID[@wd:type='Employee_ID' or @wd:type='Contingent_Worker_ID']"
        ),
        "wid": _text(node, "wd:Worker_Reference/wd:ID[@wd:type='WID']"),
        "user_id": _text(node, data + "wd:User_ID"),
        "first_name": _text(node, name + "wd:Legal_Name_Data/wd:Name_Detail_Data/wd:First_Name"),
        "last_name": _text(node, name + "wd:Legal_Name_Data/wd:Name_Detail_Data/wd:Last_Name"),
        "preferred_name": _text(node, name + "wd:Preferred_Name_Data/wd:Name_Detail_Data/wd:First_Name"),
        "work_email": _text(node, email.format("WORK")),
        "home_email": _text(node, email.format("HOME")),
        "title": _text(node, job + "wd:Position_Data/wd:Business_Title")
        or _text(node, job + "wd:Position_Data/wd:Position_Title"),
        # A reference carries several IDs (the WID first): pick the one that names the type.
        "worker_type": _text(
            node,
            job + "wd:Position_Data/wd:Worker_Type_Reference/wd:ID"
            "[@wd:type='Employee_Type_ID' or @wd:type='Contingent_Worker_Type_ID']",
        ),
        "location": _text(node, job + "wd:Position_Data/wd:Business_Site_Summary_Data/wd:Name"),
        "country": _text(
            node,
            job + "wd:Position_Data/wd:Business_Site_Summary_Data/wd:Address_Data/"
            "wd:Country_Reference/wd:ID[@wd:type='ISO_3166-1_Alpha-2_Code']",
        ),
        "department": _text(node, org.format("SUPERVISORY")),
        "cost_center": _text(node, org.format("COST_CENTER")),
        "manager": _text(
            node,
            data + "wd:Management_Chain_Data/wd:Worker_Supervisory_Management_Chain_Data/"
            "wd:Management_Chain_Data[last()]/wd:Manager_Reference/"
            "wd:ID[@wd:type='Employee_ID']",
        ),
        "active": _text(node, status + "wd:Active"),
        "hire_date": _text(node, status + "wd:Hire_Date"),
        "terminated": _text(node, status + "wd:Terminated"),
        "termination_date": _text(node, status + "wd:Termination_Date"),
        "on_leave": _text(node, status + "wd:Leave_Status_Data/wd:On_Leave"),
    }


def _date(value: str | None) -> date | None:
    # Workday dates may carry a zone offset: 2026-03-01-08:00.
    return date.fromisoformat(value[:10]) if value else None


def _flag(value: str | None) -> bool:
    return (value or "").lower() in ("1", "true")


class WorkdaySettings(HttpSourceSettings):
    username: str  # the ISU, with the tenant: isu_user@tenant
    password: SecretStr
    version: str = "v40.0"
    page_size: int = Field(default=500, ge=1, le=999)  # the schema caps Count at three digits


class WorkdaySource(HttpSource):
    writable = frozenset(writeback.WRITABLE)
    vendor = "Workday"
    settings_model = WorkdaySettings
    requires_auth = False  # WS-Security from username and password
    id_key = "employee_id"

    def __init__(self, name: str, settings: WorkdaySettings):
        super().__init__(name, settings)
        self.soap = settings

    def retry_policy(self) -> RetryPolicy:
        # SOAP faults arrive as HTTP 500; a Client.* fault (bad password, bad request) is final.
        return RetryPolicy(
            max_attempts=self.settings.max_attempts,
            base_delay=self.settings.backoff,
            permanent=lambda r: (fault_of(r.content) or ("",))[0].split(":")[-1].startswith("Client"),
        )

    async def _call(self, body: bytes) -> etree._Element:
        response = await self.client.post(
            self.settings.base_url.rstrip("/"), content=body, headers={"Content-Type": "text/xml; charset=utf-8"}
        )
        if response.status_code == 200:
            return etree.fromstring(response.content)
        fault = fault_of(response.content)
        if fault and "authentication" in fault[0]:
            raise SourceError(
                f"source {self.name}: Workday refused the credentials ({fault[0].split(':')[-1]}); "
                "check username (isu_user@tenant) and password"
            )
        if fault:
            raise SourceError(f"source {self.name}: Workday fault {fault[0]}: {fault[1]}")
        raise PagingError(response)

    async def write_back(self, remote_id: str, values: Mapping[str, str]) -> None:
        """Each value through its Human_Resources request (sources/workday/writeback.py), then the
        worker read back: done only when Get_Workers shows every value."""
        if unknown := sorted(set(values) - set(writeback.WRITABLE)):
            raise WritebackRefused(f"source {self.name}: Workday writeback has no request for {', '.join(unknown)}")
        secret = self.soap.password.get_secret_value()
        for name, value in values.items():
            body = writeback.REQUESTS[name](self.soap.username, secret, self.soap.version, remote_id, value)
            response = await self._guarded(
                self.client.post(
                    self.settings.base_url.rstrip("/"),
                    content=body,
                    headers={"Content-Type": "text/xml; charset=utf-8"},
                )
            )
            if response.status_code != 200:
                raise self._write_failed(response)
        held = await self._guarded(self.record(remote_id))
        if held is None:
            raise WritebackRefused(f"source {self.name}: Workday no longer lists worker {remote_id}")
        # The values are personal: the error names the fields only.
        if wrong := [name for name, value in values.items() if held.get(writeback.WRITABLE[name]) != value]:
            raise WritebackRefused(f"source {self.name}: Workday answered and kept its {', '.join(wrong)}")

    def _write_failed(self, response: httpx.Response) -> SourceError:
        """A Client.* fault (validation, credentials, permission) is final; the rest may pass later."""
        fault = fault_of(response.content)
        if fault and fault[0].split(":")[-1].startswith("Client"):
            return WritebackRefused(f"source {self.name}: Workday fault {fault[0]}: {fault[1]}")
        said = f"Workday fault {fault[0]}: {fault[1]}" if fault else f"HTTP {response.status_code}"
        return SourceError(f"source {self.name}: {said}")

    def _request(self, **kw: Any) -> bytes:
        return envelope(
            self.soap.username,
            self.soap.password.get_secret_value(),
            self.soap.version,
            count=self.soap.page_size,
            **kw,
        )

    async def records(self, since: datetime | None) -> AsyncIterator[dict[str, Any]]:
        if since is None:
            async for record in self._pages():
                yield record
            return
        # As Entra does: changes entered in the window, then changes taking effect in it (a
        # termination or hire entered weeks ago that is effective today). One worker may be in both.
        seen: set[str | None] = set()
        now = datetime.now(UTC)
        for window in ("Updated", "Effective"):
            async for record in self._pages(updated=(since, now), window=window):
                if record["employee_id"] not in seen:
                    seen.add(record["employee_id"])
                    yield record

    async def _pages(self, **criteria: Any) -> AsyncIterator[dict[str, Any]]:
        page, pages = 1, 1
        while page <= pages:
            root = await self._call(self._request(page=page, **criteria))
            pages = int(_text(root, "//wd:Response_Results/wd:Total_Pages") or 0)
            for node in _WORKERS(root):
                yield worker_record(node)
            page += 1

    async def record(self, remote_id: str) -> dict[str, Any] | None:
        root = await self._call(self._request(employee_id=remote_id))
        nodes = _WORKERS(root)
        return worker_record(nodes[0]) if nodes else None

    def to_worker(self, record: dict[str, Any], today: date | None = None) -> dict[str, Any]:
        today = today or date.today()
        hired, ended = _date(record["hire_date"]), _date(record["termination_date"])
        if _flag(record["terminated"]) or (ended and ended < today and not _flag(record["active"])):
            status = "terminated"
        elif not _flag(record["active"]) and hired and hired > today:
            status = "pending"  # a future hire is inactive until its hire date
        elif _flag(record["on_leave"]):
            status = "on_leave"
        else:
            status = "active"
        kind = (record["worker_type"] or "").lower()
        return {
            "employee_number": record["employee_id"],
            "username": record["user_id"],
            "first_name": record["first_name"],
            "last_name": record["last_name"],
            "preferred_name": record["preferred_name"],
            "work_email": record["work_email"],
            "personal_email": record["home_email"],
            "title": record["title"],
            "department": record["department"],
            "cost_center": record["cost_center"],
            "location": record["location"],
            "country": record["country"],
            "manager_id": f"{self.name}:{record['manager']}" if record["manager"] else None,
            "employment_type": employment_type(kind),
            "status": status,
            "start_date": hired,
            "termination_date": ended,
            "custom": {"wid": record["wid"]} if record["wid"] else {},
        }
