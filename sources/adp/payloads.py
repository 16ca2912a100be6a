"""The JSON shapes ADP's Workforce Now API answers with, as its sample payloads show them
(https://github.com/adpllc/marketplace-sample-payloads: wfn/hr/workers-v2, wfn/EventNotifications,
the confirmMessage of the errors/ folders): for the emulator."""

from __future__ import annotations

import hashlib
import uuid
from datetime import UTC, date, datetime
from typing import Any


def adp_time(moment: datetime | None = None) -> str:
    """ADP's timestamps: milliseconds and a +0000 offset."""
    moment = (moment or datetime.now(UTC)).astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}+0000"


def confirm_message(status: int, text: str, method: str = "GET") -> dict[str, Any]:
    return {
        "confirmMessage": {
            "confirmMessageID": {"idValue": str(uuid.uuid4()).upper(), "schemeName": "confirmMessageID"},
            "createDateTime": adp_time(),
            "protocolStatusCode": {"codeValue": str(status)},
            "requestStatusCode": {"codeValue": "failed"},
            "requestMethodCode": {"codeValue": method},
            "processMessages": [{"messageTypeCode": {"codeValue": "error"}, "userMessage": {"messageTxt": text}}],
        }
    }


def notification(event: str, aoid: str, worker_id: str | None) -> dict[str, Any]:
    """One event of an event notification message about a worker."""
    now = adp_time()
    return {
        "eventID": str(uuid.uuid4()),
        "serviceCategoryCode": {"codeValue": "HR"},
        "eventNameCode": {"codeValue": event},
        "eventStatusCode": {"codeValue": "COMPLETED", "shortName": "Completed"},
        "recordDateTime": now,
        "creationDateTime": now,
        "effectiveDateTime": now,
        "actor": {"associateOID": "G3PRACTITIONER01"},
        "data": {
            "eventContext": {"worker": {"associateOID": aoid}},
            "output": {"worker": {"associateOID": aoid, "workerID": {"idValue": worker_id}}},
        },
        "links": [],
    }


def _unit(type_code: str, type_name: str, code: str, name: str) -> dict[str, Any]:
    return {
        "nameCode": {"codeValue": code, "shortName": name},
        "typeCode": {"codeValue": type_code, "shortName": type_name},
    }


def worker_json(w: dict[str, Any], today: date) -> dict[str, Any]:
    """One worker as `GET /hr/v2/workers` shows it."""
    ended = w["termination_date"]
    gone = bool(ended) and ended <= today.isoformat()
    if gone:
        status, assignment = "Terminated", {"codeValue": "T", "shortName": "Terminated"}
    elif w["on_leave"]:
        status, assignment = "Inactive", {"codeValue": "L", "shortName": "Leave"}
    else:
        status, assignment = "Active", {"codeValue": "A", "shortName": "Active"}
    units = [
        _unit("Business Unit", "Business Unit", w["business_unit"][:4].upper(), w["business_unit"]),
        _unit("Department", "Department", hashlib.md5(w["department"].encode()).hexdigest()[:6], w["department"]),
        _unit("Cost Number", "Home Cost Number", w["cost_number"], "**"),
    ]
    work: dict[str, Any] = {
        "itemID": f"{w['worker_id']}_1",
        "primaryIndicator": True,
        "hireDate": w["hire_date"],
        "actualStartDate": w["hire_date"],
        "assignmentStatus": {"statusCode": assignment},
        "workerTypeCode": {"codeValue": w["worker_type"][0], "shortName": w["worker_type"][1]},
        "jobTitle": w["job_title"],
        "homeOrganizationalUnits": units,
        "assignedOrganizationalUnits": units,
        "homeWorkLocation": {
            "nameCode": {"codeValue": w["location"][:3].upper(), "shortName": w["location"]},
            "address": {"cityName": w["location"], "countryCode": w["country"]},
        },
    }
    if ended:
        work["terminationDate"] = ended
    if w["manager"]:
        work["reportsTo"] = [{"associateOID": w["manager"], "positionID": f"POS{w['manager'][-6:]}"}]
    name = {"givenName": w["given"], "familyName1": w["family"], "formattedName": f"{w['family']}, {w['given']}"}
    personal = {"nameCode": {"codeValue": "Personal E-mail", "shortName": "Personal E-mail"}}
    business = {"itemID": "Business", "nameCode": {"codeValue": "Work E-mail", "shortName": "Work E-mail"}}
    return {
        "associateOID": w["aoid"],
        "workerID": {"idValue": w["worker_id"]},
        "person": {
            "legalName": name,
            "preferredName": {"givenName": w["preferred"]} if w["preferred"] else {},
            "communication": {"emails": [{**personal, "emailUri": w["personal_email"]}]},
        },
        "workerDates": {"originalHireDate": w["hire_date"], **({"terminationDate": ended} if ended else {})},
        "workerStatus": {"statusCode": {"codeValue": status}},
        "businessCommunication": {"emails": [{**business, "emailUri": w["work_email"]}]},
        "workAssignments": [work],
    }
