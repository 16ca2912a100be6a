"""A Workday emulator: Human_Resources `Get_Workers` over SOAP 1.1, as a tenant serves it at
`/ccx/service/{tenant}/Human_Resources[/vNN.N]`.

Facts: Workday's Get_Workers reference
(https://community.workday.com/sites/default/files/file-hosting/productionapi/Human_Resources/v40.0/Get_Workers.html).
WS-Security UsernameToken (`isu@tenant`,
PasswordText) or `SOAP-ENV:Client.authenticationError`; `Response_Filter` Page/Count (Count over
999 is a `Client.validationError`), `Response_Results` with Total_Results/Total_Pages; incremental
via `Transaction_Log_Criteria_Data/Transaction_Date_Range_Data` Updated_From/Through (entered in
the window) or Effective_From/Through (a hire or termination dated in it); one worker
via `Request_References`. Faults are sent with HTTP 500 (SOAP 1.1; the facts call the status
unconfirmed). Rate limiting is not documented for Workday; forced faults give 503 + Retry-After.
"""

from __future__ import annotations

import hashlib
import itertools
import re
import secrets
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any, cast

from lxml import etree
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from provisioner.engine.kit.emulation import RateGate
from provisioner.sources.emulation import Vendor, admin_routes, fake_people
from provisioner.sources.workday.soap import NS, SOAP, WD, WSSE
from provisioner.sources.workday.writeback import ACCOUNT_UPDATE, MAINTAIN_CONTACT

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
EMPLOYEE_TYPES = {"Full-time": "Regular", "Part-time": "Part_Time", "Contractor": "Contractor", "Intern": "Intern"}


@dataclass
class WorkdayState(Vendor):
    tenant: str = "acme"
    username: str = "isu_provisioner@acme"
    password: str = field(default_factory=lambda: secrets.token_urlsafe(12))
    workers: dict[str, dict[str, Any]] = field(default_factory=dict)
    gate: RateGate = field(default_factory=lambda: RateGate(rate=1000.0, burst=1000))
    # Fields (work_email, user_id) the ISU's security group may not change: its writes fault.
    locked_fields: set[str] = field(default_factory=set)
    _ids: itertools.count = field(default_factory=lambda: itertools.count(21001))

    def seed(self, count: int, seed: int = 19) -> list[str]:
        ids = [self.hire(**{**person, "start_date": "2024-03-01"}) for person in fake_people(count, seed)]
        for emp_id in ids[1:]:
            self.workers[emp_id]["manager"] = ids[0]
        return ids

    def hire(
        self,
        *,
        first_name: str,
        last_name: str,
        personal_email: str,
        department: str = "Engineering",
        title: str = "Software Engineer",
        location: str = "Berlin",
        country: str = "DE",
        commitment: str = "Full-time",
        start_date: str | None = None,
        **_: Any,
    ) -> str:
        with self.lock:
            emp_id = str(next(self._ids))
            start = start_date or date.today().isoformat()
            self.workers[emp_id] = {
                "employee_id": emp_id,
                "wid": secrets.token_hex(16),
                "user_id": f"{first_name[0]}{last_name}".lower(),
                "first_name": first_name,
                "last_name": last_name,
                "preferred_name": None,
                "work_email": f"{first_name}.{last_name}{emp_id}@acme.example".lower().replace(" ", ""),
                "home_email": personal_email,
                "title": title,
                "worker_type": EMPLOYEE_TYPES.get(commitment, "Regular"),
                "location": location,
                "country": country,
                "department": department,
                "cost_center": "CC-100",
                "manager": None,
                "hire_date": start,
                "termination_date": None,
                "on_leave": False,
                "updated": datetime.now(UTC),
            }
            return emp_id

    def change(self, emp_id: str, **changes: Any) -> None:
        with self.lock:
            self.workers[emp_id].update(changes, updated=datetime.now(UTC))

    def terminate(self, emp_id: str, on: str | None = None) -> None:
        self.change(emp_id, termination_date=on or date.today().isoformat())

    def remove(self, emp_id: str) -> None:
        """The record disappears from Get_Workers (a rescinded hire)."""
        with self.lock:
            del self.workers[emp_id]


def _wd(parent: etree._Element, name: str, text: str | None = None, **attrs: str) -> etree._Element:
    child = etree.SubElement(parent, f"{{{WD}}}{name}", {f"{{{WD}}}{k}": v for k, v in attrs.items()})
    if text is not None:
        child.text = text
    return child


def _id(parent: etree._Element, kind: str, value: str) -> None:
    _wd(parent, "ID", value, type=kind)


def _worker_xml(parent: etree._Element, w: dict[str, Any], today: date) -> None:
    node = _wd(parent, "Worker")
    ref = _wd(node, "Worker_Reference")
    _id(ref, "WID", w["wid"])
    _id(ref, "Employee_ID", w["employee_id"])
    data = _wd(node, "Worker_Data")
    _wd(data, "Worker_ID", w["employee_id"])
    _wd(data, "User_ID", w["user_id"])
    personal = _wd(data, "Personal_Data")
    names = _wd(personal, "Name_Data")
    legal = _wd(_wd(names, "Legal_Name_Data"), "Name_Detail_Data", Formatted_Name=f"{w['first_name']} {w['last_name']}")
    _wd(legal, "First_Name", w["first_name"])
    _wd(legal, "Last_Name", w["last_name"])
    if w["preferred_name"]:
        _wd(_wd(_wd(names, "Preferred_Name_Data"), "Name_Detail_Data"), "First_Name", w["preferred_name"])
    contact = _wd(personal, "Contact_Data")
    for kind, address in (("WORK", w["work_email"]), ("HOME", w["home_email"])):
        email = _wd(contact, "Email_Address_Data")
        _wd(email, "Email_Address", address)
        usage = _wd(email, "Usage_Data", Public="1" if kind == "WORK" else "0")
        _id(_wd(_wd(usage, "Type_Data", Primary="1"), "Type_Reference"), "Communication_Usage_Type_ID", kind)
    employment = _wd(data, "Employment_Data")
    position = _wd(_wd(employment, "Worker_Job_Data", Primary_Job="1"), "Position_Data")
    _wd(position, "Position_Title", w["title"])
    _wd(position, "Business_Title", w["title"])
    worker_type = _wd(position, "Worker_Type_Reference")
    _id(worker_type, "WID", hashlib.md5(w["worker_type"].encode()).hexdigest())  # as Workday writes references
    _id(worker_type, "Employee_Type_ID", w["worker_type"])
    site = _wd(position, "Business_Site_Summary_Data")
    _wd(site, "Name", w["location"])
    _id(_wd(_wd(site, "Address_Data"), "Country_Reference"), "ISO_3166-1_Alpha-2_Code", w["country"])
    status = _wd(employment, "Worker_Status_Data")
    hired, ended = date.fromisoformat(w["hire_date"]), w["termination_date"]
    gone = bool(ended) and date.fromisoformat(ended) <= today
    _wd(status, "Active", "1" if hired <= today and not gone else "0")
    _wd(status, "Hire_Date", w["hire_date"])
    _wd(status, "Terminated", "1" if gone else "0")
    if ended:  # entered ahead of its date: the lookahead reading shows it before it is effective
        _wd(status, "Termination_Date", ended)
    if w["on_leave"]:
        _wd(_wd(status, "Leave_Status_Data"), "On_Leave", "1")
    orgs = _wd(_wd(data, "Organization_Data"), "Worker_Organization_Data")
    for kind, name in (("SUPERVISORY", w["department"]), ("COST_CENTER", w["cost_center"])):
        org = _wd(orgs, "Organization_Data")
        _wd(org, "Organization_Name", name)
        _id(_wd(org, "Organization_Type_Reference"), "Organization_Type_ID", kind)
    if w["manager"]:
        chain = _wd(
            _wd(_wd(data, "Management_Chain_Data"), "Worker_Supervisory_Management_Chain_Data"), "Management_Chain_Data"
        )
        _id(_wd(chain, "Manager_Reference"), "Employee_ID", w["manager"])


def _envelope() -> tuple[etree._Element, etree._Element]:
    env = etree.Element(f"{{{SOAP}}}Envelope", nsmap={"env": SOAP, "wd": WD})
    return env, etree.SubElement(env, f"{{{SOAP}}}Body")


def _fault(code: str, message: str, status: int = 500, headers: dict[str, str] | None = None) -> Response:
    env, body = _envelope()
    fault = etree.SubElement(body, f"{{{SOAP}}}Fault")
    etree.SubElement(fault, "faultcode").text = f"SOAP-ENV:{code}"
    etree.SubElement(fault, "faultstring").text = message
    detail = _wd(_wd(etree.SubElement(fault, "detail"), "Validation_Fault"), "Validation_Error")
    _wd(detail, "Message", message)
    return Response(etree.tostring(env), status_code=status, media_type="text/xml", headers=headers)


def _write(state: WorkdayState, root: etree._Element, version: str) -> Response:
    """Maintain_Contact_Information (a WORK email) and Update_Workday_Account (a User_Name), stored
    so the next Get_Workers returns them; the facts are in sources/workday/writeback.py."""
    text = lambda path: (root.findtext(f".//wd:{path}", namespaces=NS) or "").strip()  # noqa: E731
    if root.find(f".//wd:{MAINTAIN_CONTACT}", NS) is not None:
        emp_id, field, value = text("Maintain_Contact_Information_Data/wd:Worker_Reference/wd:ID"), "work_email", ""
        if text("Email_Address_Data/wd:Usage_Data/wd:Type_Data/wd:Type_Reference/wd:ID") == "WORK":
            value = text("Email_Address_Data/wd:Email_Address")
        if not _EMAIL.match(value):
            return _fault("Client.validationError", "Email Address is not valid")
    elif root.find(f".//wd:{ACCOUNT_UPDATE}", NS) is not None:
        emp_id, field = text("Employee_Reference/wd:Integration_ID_Reference/wd:ID"), "user_id"
        if not (value := text("Workday_Account_for_Worker_Data/wd:User_Name")):
            return _fault("Client.validationError", "User Name is required")
    else:
        return _fault("Client.validationError", "Unsupported request")
    if emp_id not in state.workers:
        return _fault("Client.validationError", f"Invalid ID value. '{emp_id}' is not a valid ID value")
    if field in state.locked_fields:
        return _fault("Client.validationError", "The task submitted is not authorized.")
    state.change(emp_id, **{field: value})
    env, body = _envelope()
    name = "Maintain_Contact_Information_for_Person_Event" if field == "work_email" else ACCOUNT_UPDATE
    _id(_wd(_wd(body, f"{name}_Response", version=version), "Worker_Reference"), "Employee_ID", emp_id)
    return Response(etree.tostring(env, xml_declaration=True, encoding="UTF-8"), media_type="text/xml")


def create_app(state: WorkdayState) -> Starlette:
    async def human_resources(request: Request) -> Response:
        if (refused := state.admit()) is not None:
            status, _headers = refused
            return _fault(
                "Server",
                "Service Unavailable",
                503 if status == 429 else status,
                {"Retry-After": "1"} if status == 429 else None,
            )
        try:
            root = etree.fromstring(await request.body())
        except etree.XMLSyntaxError:
            return _fault("Client.validationError", "Invalid request")
        user = root.findtext(f".//{{{WSSE}}}UsernameToken/{{{WSSE}}}Username")
        password = root.findtext(f".//{{{WSSE}}}UsernameToken/{{{WSSE}}}Password")
        if user != state.username or not secrets.compare_digest((password or "").encode(), state.password.encode()):
            return _fault("Client.authenticationError", "invalid username or password")
        if root.find(".//wd:Get_Workers_Request", NS) is None:
            return _write(state, root, request.path_params.get("version", "v21.1"))
        find = lambda path: root.findtext(f".//wd:Get_Workers_Request/{path}", namespaces=NS)  # noqa: E731
        try:
            page, count = int(find("wd:Response_Filter/wd:Page") or 1), int(find("wd:Response_Filter/wd:Count") or 100)
        except ValueError:
            return _fault("Client.validationError", "Page and Count must be numbers")
        if not 1 <= count <= 999:
            return _fault("Client.validationError", "Count must be between 1 and 999")
        rows = sorted(state.workers.values(), key=lambda w: w["employee_id"])
        wanted = cast(list[str], root.xpath("//wd:Request_References/wd:Worker_Reference/wd:ID/text()", namespaces=NS))
        if wanted:
            rows = [w for w in rows if w["employee_id"] in wanted or w["wid"] in wanted]
        window = "wd:Request_Criteria/wd:Transaction_Log_Criteria_Data/wd:Transaction_Date_Range_Data/"
        if (start := find(window + "wd:Updated_From")) is not None:
            start_at = datetime.fromisoformat(start)
            end_at = datetime.fromisoformat(find(window + "wd:Updated_Through") or datetime.now(UTC).isoformat())
            rows = [w for w in rows if start_at <= w["updated"] <= end_at]
        if (start := find(window + "wd:Effective_From")) is not None:
            # a hire or termination whose date falls in the window takes effect in it
            first = datetime.fromisoformat(start).date()
            last = datetime.fromisoformat(find(window + "wd:Effective_Through") or datetime.now(UTC).isoformat()).date()
            rows = [
                w
                for w in rows
                if any(
                    d and first.isoformat() <= d <= last.isoformat() for d in (w["hire_date"], w["termination_date"])
                )
            ]
        pages = max(1, -(-len(rows) // count))
        chunk = rows[(page - 1) * count : page * count]
        env, body = _envelope()
        response = _wd(body, "Get_Workers_Response", version=request.path_params.get("version", "v21.1"))
        results = _wd(response, "Response_Results")
        for name, value in (
            ("Total_Results", len(rows)),
            ("Total_Pages", pages),
            ("Page_Results", len(chunk)),
            ("Page", page),
        ):
            _wd(results, name, str(value))
        data, today = _wd(response, "Response_Data"), date.today()
        for worker in chunk:
            _worker_xml(data, worker, today)
        return Response(etree.tostring(env, xml_declaration=True, encoding="UTF-8"), media_type="text/xml")

    return Starlette(
        routes=[
            Route("/ccx/service/{tenant}/Human_Resources", human_resources, methods=["POST"]),
            Route("/ccx/service/{tenant}/Human_Resources/{version}", human_resources, methods=["POST"]),
            *admin_routes(state),
        ]
    )


State = WorkdayState  # the name the sandbox and tests look for in every vendor emulator


# What `provisioner sandbox` serves and prints for this vendor (engine/sandbox names no vendor).
# Fixed credentials, so examples/hris-and-ats.yaml works against the sandbox as documented.
SANDBOX_CREDENTIALS = {"password": "sandbox-workday-password"}
SANDBOX_RANK = 2  # where its entry sits in the printed config


def sandbox_settings(url: str, state: WorkdayState) -> str:
    """This vendor's settings in the sandbox config (YAML lines), its emulator mounted at `url`."""
    return f"""\
    base_url: {url}/ccx/service/acme/Human_Resources/v40.0
    username: {state.username}
    password: {state.password}
"""
