"""The SuccessFactors emulator's people: persons, their employments (each with a User and
effective-dated job slices) and emails, changed the way Employee Central changes them: a job change
is a new slice from its day (a later day is a scheduled change), a termination ends the employment
and starts a Terminated slice the day after, a conversion or rehire adds an employment."""

from __future__ import annotations

import itertools
import secrets
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from provisioner.engine.kit.emulation import RateGate
from provisioner.sources.emulation import Vendor, ascii_local, fake_people
from provisioner.sources.successfactors.entities import EMAIL_TYPES

ALPHA3 = {"DE": "DEU", "GB": "GBR", "US": "USA", "PT": "PRT", "CA": "CAN"}


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass
class SuccessFactorsState(Vendor):
    company_id: str = "ACME"
    username: str = "sfapi"
    password: str = field(default_factory=lambda: secrets.token_urlsafe(12))
    client_id: str = field(default_factory=lambda: secrets.token_hex(12))  # the OAuth client's API key
    certificate: str | None = None  # PEM of the OAuth client's X.509 certificate
    tokens: dict[str, str] = field(default_factory=dict)  # access token -> user id
    people: dict[str, dict[str, Any]] = field(default_factory=dict)
    snapshots: dict[str, list[str]] = field(default_factory=dict)
    gate: RateGate = field(default_factory=lambda: RateGate(rate=1000.0, burst=1000))
    retry_after: int = 1
    _ids: itertools.count = field(default_factory=lambda: itertools.count(10001))

    def seed(self, count: int, seed: int = 23) -> list[str]:
        ids = [self.hire(**{**p, "start_date": "2024-03-01"}) for p in fake_people(count, seed)]
        for pid in ids[1:]:
            self.change(pid, manager=ids[0])
        return ids

    def hire(
        self,
        *,
        first_name: str,
        last_name: str,
        personal_email: str | None = None,
        department: str = "Engineering",
        title: str = "Software Engineer",
        location: str = "Berlin",
        country: str = "DE",
        commitment: str = "Full-time",
        start_date: str | None = None,
        person_id: str | None = None,
        **_: Any,
    ) -> str:
        with self.lock:
            pid = person_id or str(next(self._ids))
            start, now = start_date or date.today().isoformat(), _now()
            local = ascii_local(first_name, last_name)
            emails = {"B": {"emailAddress": f"{local}{pid}@acme.example", "isPrimary": True, "lastModified": now}}
            if personal_email:
                emails["P"] = {"emailAddress": personal_email, "isPrimary": False, "lastModified": now}
            self.people[pid] = {
                "personIdExternal": pid,
                "uuid": str(uuid.uuid4()).upper(),
                "lastModified": now,
                "personal": {"firstName": first_name, "lastName": last_name, "startDate": start, "lastModified": now},
                "emails": emails,
                "employments": [],
            }
            self.employ(
                pid,
                start,
                commitment=commitment,
                title=title,
                department=department,
                location=location,
                country=country,
                user_id=pid,
            )
            return pid

    def employ(
        self,
        pid: str,
        start: str,
        *,
        commitment: str = "Full-time",
        title: str = "Software Engineer",
        department: str = "Engineering",
        location: str = "Berlin",
        country: str = "DE",
        user_id: str | None = None,
    ) -> str:
        """A new EmpEmployment (and User) for a person: a hire, a rehire, or a conversion."""
        with self.lock:
            person, now = self.people[pid], _now()
            user_id = user_id or f"{pid}-{len(person['employments']) + 1}"
            personal = person["personal"]
            person["employments"].append(
                {
                    "userId": user_id,
                    "startDate": start,
                    "endDate": None,
                    "isContingentWorker": commitment == "Contractor",
                    "lastModified": now,
                    "user": {
                        "username": f"{personal['firstName'][0]}{personal['lastName']}{user_id}".lower(),
                        "firstName": personal["firstName"],
                        "lastName": personal["lastName"],
                        "timeZone": "Europe/Berlin",
                        "managerId": None,
                        "lastModified": now,
                    },
                    "jobs": [
                        {
                            "startDate": start,
                            "emplStatus": "A",
                            "jobTitle": title,
                            "department": department,
                            "division": "Acme Corp",
                            "location": location,
                            "costCenter": "CC-100",
                            "countryOfCompany": ALPHA3.get(country, country),
                            "isFulltimeEmployee": commitment != "Part-time",
                            "lastModified": now,
                        }
                    ],
                }
            )
            return user_id

    def _current(self, pid: str) -> dict[str, Any]:
        return self.people[pid]["employments"][-1]

    def change(self, pid: str, on: str | None = None, **changes: Any) -> None:
        """A job change as a new slice from `on` (today by default; later = a scheduled change), or,
        for names, manager and stored values, an edit in place."""
        with self.lock:
            person, now = self.people[pid], _now()
            employment = self._current(pid)
            job_keys = {
                "title": "jobTitle",
                "department": "department",
                "location": "location",
                "emplStatus": "emplStatus",
                "countryOfCompany": "countryOfCompany",
                "startDate": "startDate",
            }
            job_changes = {job_keys[k]: v for k, v in changes.items() if k in job_keys}
            if "manager" in changes:
                boss = changes["manager"]
                employment["user"].update(managerId=self._current(boss)["userId"] if boss else None, lastModified=now)
            if "first_name" in changes:
                person["personal"].update(firstName=changes["first_name"], lastModified=now)
            if "employment_start" in changes:  # the stored value as is, valid or not
                employment.update(startDate=changes["employment_start"], lastModified=now)
            if job_changes:
                day = on or date.today().isoformat()
                jobs = employment["jobs"]
                base = max(
                    (j for j in jobs if str(j["startDate"]) <= day), key=lambda j: str(j["startDate"]), default=jobs[0]
                )
                jobs[:] = [j for j in jobs if j["startDate"] != day] + [
                    {**base, "startDate": day, **job_changes, "lastModified": now}
                ]
            person["lastModified"] = now

    def terminate(self, pid: str, on: str | None = None) -> None:
        """The last day worked is `on`; the Terminated slice starts the day after."""
        with self.lock:
            last = date.fromisoformat(on or date.today().isoformat())
            employment = self._current(pid)
            employment.update(endDate=last.isoformat(), lastModified=_now())
            self.change(pid, on=date.fromordinal(last.toordinal() + 1).isoformat(), emplStatus="T")

    def remove(self, pid: str) -> None:
        """The person is purged (a hire entered by mistake)."""
        with self.lock:
            del self.people[pid]

    def email_of(self, pid: str, code: str = "B") -> str | None:
        held = self.people[pid]["emails"].get(code)
        return held["emailAddress"] if held else None

    def upsert_email(self, index: int, item: dict[str, Any]) -> dict[str, Any]:
        """One PerEmail record of an upsert, answered as SuccessFactors answers each record."""
        codes = {type_id: code for code, (type_id, _label) in EMAIL_TYPES.items()}
        pid, type_id = str(item.get("personIdExternal")), str(item.get("emailType"))
        key = f"PerEmail/emailType={type_id},PerEmail/personIdExternal={pid}"

        def outcome(message: str | None) -> dict[str, Any]:
            status = "ERROR" if message else "OK"
            return {
                "key": key,
                "status": status,
                "editStatus": None if message else "UPSERTED",
                "message": message,
                "index": index,
                "httpCode": 500 if message else 200,
                "inlineResults": None,
            }

        primary = item.get("isPrimary")
        with self.lock:
            if pid not in self.people or type_id not in codes:
                return outcome(f"Invalid key {key} with the index {index}")
            if not isinstance(primary, bool):
                return outcome("isPrimary contains an invalid flag for boolean field.")
            held = self.people[pid]["emails"]
            code = codes[type_id]
            if primary and any(e["isPrimary"] for c, e in held.items() if c != code):
                return outcome(f"A person can only have one primary email address with the index {index}")
            held[code] = {
                "emailAddress": str(item.get("emailAddress")),
                "isPrimary": primary,
                "lastModified": _now(),
            }
            return outcome(None)
