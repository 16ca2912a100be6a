"""The Ashby emulator's records and the admin edits on them (hire, change, undo), shaped as Ashby's
API reference shows its objects (https://developers.ashbyhq.com/reference). Every edit of an
application gives it the next change number, which is what the emulated syncToken counts."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from provisioner.sources.emulation import Vendor, iso_now

# Ashby's job employment types (https://developers.ashbyhq.com/reference/jobinfo), by the words the
# fake people's commitments use.
EMPLOYMENT_TYPES = {"full-time": "FullTime", "part-time": "PartTime", "contractor": "Contract", "intern": "Intern"}
# A location's postal address names its country as people write it.
JOB_DEFAULTS = {"department": "Engineering", "title": "Software Engineer", "location": "Berlin", "country": "DE",
                "commitment": "Full-time"}  # fmt: skip
COUNTRIES = {"DE": "Germany", "GB": "United Kingdom", "US": "United States", "PT": "Portugal", "CA": "Canada"}


def _uid() -> str:
    return str(uuid.uuid4())


@dataclass
class AshbyData(Vendor):
    applications: dict[str, dict[str, Any]] = field(default_factory=dict)
    candidates: dict[str, dict[str, Any]] = field(default_factory=dict)
    offers: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # by application id
    jobs: dict[str, dict[str, Any]] = field(default_factory=dict)
    departments: dict[str, dict[str, Any]] = field(default_factory=dict)
    locations: dict[str, dict[str, Any]] = field(default_factory=dict)
    users: dict[str, dict[str, Any]] = field(default_factory=dict)
    seq: int = 0  # the last change number
    seqs: dict[str, int] = field(default_factory=dict)  # application id -> its last change number

    def _named(self, table: dict[str, dict[str, Any]], name: str, **extra: Any) -> str:
        for key, row in table.items():
            if row["name"] == name:
                return key
        key = _uid()
        table[key] = {"id": key, "name": name, "externalName": None, "isArchived": False, **extra}
        return key

    def job(self, title: str, department: str, city: str, country: str, commitment: str) -> str:
        did = self._named(self.departments, department, parentId=None)
        address = {"postalAddress": {"addressLocality": city, "addressCountry": COUNTRIES.get(country, country)}}
        lid = self._named(self.locations, city, address=address, isRemote=False, workplaceType="OnSite")
        for jid, job in self.jobs.items():
            if (job["title"], job["departmentId"], job["locationId"]) == (title, did, lid):
                return jid
        jid = _uid()
        self.jobs[jid] = {
            "id": jid,
            "title": title,
            "confidential": False,
            "status": "Open",
            "employmentType": EMPLOYMENT_TYPES.get(commitment.lower(), "FullTime"),
            "locationId": lid,
            "departmentId": did,
            "customFields": [],
            "jobPostingIds": [],
            "hiringTeam": [],
            "createdAt": iso_now(),
            "updatedAt": iso_now(),
        }
        return jid

    def manager(self) -> dict[str, Any]:
        if not self.users:
            uid = _uid()
            self.users[uid] = {
                "id": uid,
                "firstName": "Hanna",
                "lastName": "Manager",
                "email": "hanna.manager@acme.example",
                "globalRole": "Organization Admin",
                "isEnabled": True,
            }
        user = next(iter(self.users.values()))
        return {"userId": user["id"], "firstName": user["firstName"], "lastName": user["lastName"],
                "email": user["email"], "role": "Hiring Manager"}  # fmt: skip

    def hire(self, *, status: str = "Hired", start_date: str | None = None, **person: Any) -> str:
        """A candidate with one application (Hired unless `status` says otherwise) and an accepted
        offer; `person` as `fake_people` gives one (names and personal_email required)."""
        p = {**JOB_DEFAULTS, **person}
        with self.lock:
            jid = self.job(p["title"], p["department"], p["location"], p["country"], p["commitment"])
            cid, aid, personal_email = _uid(), _uid(), p["personal_email"]
            email = {"value": personal_email, "type": "Personal", "isPrimary": True}
            name = f"{p['first_name']} {p['last_name']}"
            self.candidates[cid] = {
                "id": cid,
                "createdAt": iso_now(),
                "updatedAt": iso_now(),
                "name": name,
                "primaryEmailAddress": email,
                "emailAddresses": [email],
                "phoneNumbers": [],
                "socialLinks": [],
                "tags": [],
                "position": None,
                "company": None,
                "applicationIds": [aid],
                "customFields": [],
                "timezone": None,
            }
            job = self.jobs[jid]
            self.applications[aid] = {
                "id": aid,
                "createdAt": iso_now(),
                "updatedAt": iso_now(),
                "status": status,
                "customFields": [],
                "candidate": {"id": cid, "name": name, "primaryEmailAddress": email},
                "currentInterviewStage": _stage(status),
                "source": None,
                "archiveReason": None,
                "archivedAt": None,
                "job": {k: job[k] for k in ("id", "title", "locationId", "departmentId")},
                "creditedToUser": None,
                "hiringTeam": [self.manager()],
                "appliedViaJobPostingId": None,
            }
            self.offers[aid] = [
                {
                    "id": _uid(),
                    "decidedAt": iso_now(),
                    "applicationId": aid,
                    "acceptanceStatus": "Accepted",
                    "offerStatus": "CandidateAccepted",
                    "latestVersion": {
                        "id": _uid(),
                        "startDate": f"{start_date}T00:00:00.000Z" if start_date else None,
                        "createdAt": iso_now(),
                        "customFields": [],
                    },
                }
            ]
            self._touch(aid)
            return aid

    def _touch(self, aid: str) -> None:
        self.seq += 1
        self.seqs[aid] = self.seq
        self.applications[aid]["updatedAt"] = iso_now()

    def change(self, aid: str, **changes: Any) -> None:
        """Admin edit: `start_date` (the offer's latest version), `name` (the candidate), or
        `status` (Hired, Archived, Active, Lead)."""
        with self.lock:
            application = self.applications[aid]
            if "start_date" in changes:
                value = changes.pop("start_date")
                when = f"{value}T00:00:00.000Z" if value and value[:1].isdigit() else value
                self.offers[aid][-1]["latestVersion"]["startDate"] = when
            if "name" in changes:
                name = changes.pop("name")
                application["candidate"]["name"] = self.candidates[application["candidate"]["id"]]["name"] = name
            if "status" in changes:
                status = changes.pop("status")
                archived = status == "Archived"
                application.update(
                    status=status,
                    currentInterviewStage=_stage(status),
                    archivedAt=iso_now() if archived else None,
                    archiveReason={"id": _uid(), "text": "Offer rescinded", "reasonType": "RejectedByOrg"}
                    if archived
                    else None,
                )
            if changes:
                raise ValueError(f"cannot change {', '.join(changes)}")
            self._touch(aid)

    def remove(self, aid: str) -> None:
        """The hire ends: the application is archived."""
        self.change(aid, status="Archived")


def _stage(status: str) -> dict[str, Any]:
    kind = {"Hired": "Hired", "Archived": "Archived", "Lead": "Lead"}.get(status, "Active")
    return {"id": _uid(), "title": kind if kind != "Active" else "Technical Interview", "type": kind}
