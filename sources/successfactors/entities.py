"""How the SuccessFactors emulator writes its entities as OData v2 JSON: PerPerson with
personalInfoNav, emailNav (emailTypeNav), employmentNav (EmpEmployment) with userNav (User, its
manager and the manager's empInfo) and jobInfoNav (EmpJob, effective-dated, with emplStatusNav,
departmentNav, locationNav). Every entity carries `__metadata` {uri, type}; a navigation not asked
for in `$expand` is `{"__deferred": {"uri": ...}}`, as OData v2 writes it.

Picklist values as SuccessFactors returns them: EmpJob.emplStatus holds the option id, and
emplStatusNav the PicklistOption with SAP's fixed external code (A, U, P, S, D, F, O, R, T) and
its label (https://userapps.support.sap.com/sap/support/knowledge/en/2505526); PerEmail.emailType
holds the ecEmailType option id (B = business, P = personal).
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from provisioner.sources.successfactors.odata import ms_date, ms_offset

EMPL_STATUS = {  # external code -> (option id, label)
    "A": ("46695", "Active"),
    "U": ("46696", "Unpaid Leave"),
    "P": ("46697", "Paid Leave"),
    "S": ("46698", "Suspended"),
    "D": ("46699", "Dormant"),
    "F": ("46700", "Furlough"),
    "O": ("46701", "Discarded"),
    "R": ("46702", "Retired"),
    "T": ("46703", "Terminated"),
}
EMAIL_TYPES = {"B": ("8448", "Business"), "P": ("8449", "Personal")}
FOREVER = date(9999, 12, 31)


def _day(value: str | None) -> str | None:
    """A stored ISO date as OData writes it; anything unparsable is written as stored (a bad record)."""
    if value is None:
        return None
    try:
        return ms_date(date.fromisoformat(value))
    except ValueError:
        return value


def _meta(root: str, kind: str, key: str) -> dict[str, Any]:
    return {"uri": f"{root}/{kind}({key})", "type": f"SFOData.{kind}"}


def _option(root: str, code: str, table: dict[str, tuple[str, str]]) -> dict[str, Any]:
    option_id, label = table[code]
    return {
        "__metadata": _meta(root, "PicklistOption", option_id),
        "id": option_id,
        "externalCode": code,
        "localeLabel": label,
        "status": "ACTIVE",
    }


def select(entity: dict[str, Any] | None, fields: str | None) -> dict[str, Any] | None:
    """`$select`: the listed properties (a navigation too, by its name or a path through it) and
    `__metadata`; without `$select`, everything."""
    if entity is None or not fields:
        return entity
    wanted = {f.strip().split("/", 1)[0] for f in fields.split(",") if f.strip()}
    return {k: v for k, v in entity.items() if k in wanted or k == "__metadata"}


class Writer:
    """Entities of one answer: `root` is the service root for URIs, `expand` the asked navigations,
    `as_of` the day whose job slices are in effect (None: every slice, for `$filter`)."""

    def __init__(self, root: str, expand: set[str] | None, as_of: date | None, people: dict[str, Any]):
        self.root, self.as_of, self.people = root, as_of, people
        self._users: dict[str, tuple[dict[str, Any], dict[str, Any]]] | None = None
        # Expanding a path expands every navigation on its way; None expands everything.
        self.expand = None if expand is None else {p.rsplit("/", n)[0] for p in expand for n in range(p.count("/") + 1)}

    def _nav(self, path: str, kind: str, key: str, build: Any) -> Any:
        if self.expand is not None and path not in self.expand:
            return {"__deferred": {"uri": f"{self.root}/{kind}({key})/{path.rsplit('/', 1)[-1]}"}}
        return build()

    def slices(self, employment: dict[str, Any]) -> list[dict[str, Any]]:
        """Job slices with their end dates: each ends the day before the next one starts."""
        jobs = sorted(employment["jobs"], key=lambda j: str(j["startDate"]))
        out = []
        for n, job in enumerate(jobs):
            nxt = jobs[n + 1]["startDate"] if n + 1 < len(jobs) else None
            try:
                end = date.fromisoformat(nxt) - timedelta(days=1) if nxt else FOREVER
            except ValueError:
                end = FOREVER
            out.append({**job, "endDate": end.isoformat()})
        return out

    def in_effect(self, slices: list[dict[str, Any]], on: date | None) -> list[dict[str, Any]]:
        if on is None:
            return slices
        day = on.isoformat()
        return [s for s in slices if str(s["startDate"]) <= day <= s["endDate"]]

    def job(self, user_id: str, job: dict[str, Any], prefix: str) -> dict[str, Any]:
        key = f"seqNumber=1L,startDate=datetime'{job['startDate']}T00:00:00',userId='{user_id}'"
        code = job["emplStatus"]
        dept = str(job["department"])
        dept_code = dept.upper().replace(" ", "_")[:10]
        return {
            "__metadata": _meta(self.root, "EmpJob", key),
            "userId": user_id,
            "seqNumber": "1",
            "startDate": _day(job["startDate"]),
            "endDate": _day(job["endDate"]),
            "emplStatus": EMPL_STATUS[code][0],
            "jobTitle": job["jobTitle"],
            "department": dept_code,
            "division": job.get("division"),
            "location": str(job["location"]).upper().replace(" ", "_"),
            "costCenter": job.get("costCenter"),
            "countryOfCompany": job["countryOfCompany"],
            "isFulltimeEmployee": job.get("isFulltimeEmployee", True),
            "managerId": job.get("managerId") or "NO_MANAGER",
            "lastModifiedDateTime": ms_offset(job["lastModified"]),
            "emplStatusNav": self._nav(
                f"{prefix}emplStatusNav", "EmpJob", key, lambda: _option(self.root, code, EMPL_STATUS)
            ),
            "departmentNav": self._nav(
                f"{prefix}departmentNav",
                "EmpJob",
                key,
                lambda: {
                    "externalCode": dept_code,
                    "name": dept,
                    "__metadata": _meta(self.root, "FODepartment", dept_code),
                },
            ),
            "locationNav": self._nav(
                f"{prefix}locationNav",
                "EmpJob",
                key,
                lambda: {"externalCode": job["location"], "name": job["location"]},
            ),
        }

    def user(self, employment: dict[str, Any], prefix: str, manager_depth: int = 1) -> dict[str, Any]:
        user, user_id = employment["user"], employment["userId"]
        entity: dict[str, Any] = {
            "__metadata": _meta(self.root, "User", f"'{user_id}'"),
            "userId": user_id,
            "username": user["username"],
            "firstName": user["firstName"],
            "lastName": user["lastName"],
            "email": user.get("email"),
            "timeZone": user.get("timeZone"),
            "status": "t" if employment.get("endDate") is None else "f",
            "lastModifiedDateTime": ms_offset(user["lastModified"]),
        }
        boss = self.find_user(user.get("managerId"))
        entity["manager"] = self._nav(
            f"{prefix}manager",
            "User",
            f"'{user_id}'",
            lambda: (
                self.user(boss[1], f"{prefix}manager/", 0) | {"empInfo": self.emp_info(boss)}
                if boss and manager_depth
                else None
            ),
        )
        return entity

    def emp_info(self, found: tuple[dict[str, Any], dict[str, Any]]) -> dict[str, Any]:
        person, employment = found
        return {"personIdExternal": person["personIdExternal"], "userId": employment["userId"]}

    def find_user(self, user_id: str | None) -> tuple[dict[str, Any], dict[str, Any]] | None:
        if self._users is None:  # built once per answer: a lookup per manager would be quadratic
            self._users = {e["userId"]: (p, e) for p in self.people.values() for e in p["employments"]}
        return self._users.get(user_id) if user_id else None

    def employment(self, person: dict[str, Any], employment: dict[str, Any]) -> dict[str, Any]:
        key = f"personIdExternal='{person['personIdExternal']}',userId='{employment['userId']}'"
        prefix = "employmentNav/"
        slices = self.in_effect(self.slices(employment), self.as_of)
        return {
            "__metadata": _meta(self.root, "EmpEmployment", key),
            "personIdExternal": person["personIdExternal"],
            "userId": employment["userId"],
            "startDate": _day(employment["startDate"]),
            "endDate": _day(employment.get("endDate")),
            "isContingentWorker": employment.get("isContingentWorker", False),
            "lastModifiedDateTime": ms_offset(employment["lastModified"]),
            "userNav": self._nav(
                f"{prefix}userNav", "EmpEmployment", key, lambda: self.user(employment, f"{prefix}userNav/")
            ),
            "jobInfoNav": self._nav(
                f"{prefix}jobInfoNav",
                "EmpEmployment",
                key,
                lambda: {"results": [self.job(employment["userId"], s, f"{prefix}jobInfoNav/") for s in slices]},
            ),
        }

    def email(
        self, person: dict[str, Any], code: str, held: dict[str, Any], prefix: str = "emailNav/"
    ) -> dict[str, Any]:
        type_id = EMAIL_TYPES[code][0]
        key = f"emailType='{type_id}',personIdExternal='{person['personIdExternal']}'"
        return {
            "__metadata": _meta(self.root, "PerEmail", key),
            "personIdExternal": person["personIdExternal"],
            "emailType": type_id,
            "emailAddress": held["emailAddress"],
            "isPrimary": held["isPrimary"],
            "lastModifiedDateTime": ms_offset(held["lastModified"]),
            "emailTypeNav": self._nav(
                f"{prefix}emailTypeNav", "PerEmail", key, lambda: _option(self.root, code, EMAIL_TYPES)
            ),
        }

    def person(self, person: dict[str, Any]) -> dict[str, Any]:
        pid = person["personIdExternal"]
        key = f"'{pid}'"
        personal = person["personal"]
        return {
            "__metadata": _meta(self.root, "PerPerson", key),
            "personIdExternal": pid,
            "perPersonUuid": person["uuid"],
            "lastModifiedDateTime": ms_offset(person["lastModified"]),
            "personalInfoNav": self._nav(
                "personalInfoNav",
                "PerPerson",
                key,
                lambda: {
                    "results": [
                        {
                            "__metadata": _meta(self.root, "PerPersonal", f"personIdExternal='{pid}'"),
                            "personIdExternal": pid,
                            "startDate": _day(personal["startDate"]),
                            "firstName": personal["firstName"],
                            "lastName": personal["lastName"],
                            "preferredName": personal.get("preferredName"),
                            "lastModifiedDateTime": ms_offset(personal["lastModified"]),
                        }
                    ]
                },
            ),
            "emailNav": self._nav(
                "emailNav",
                "PerPerson",
                key,
                lambda: {"results": [self.email(person, c, e) for c, e in sorted(person["emails"].items())]},
            ),
            "employmentNav": self._nav(
                "employmentNav",
                "PerPerson",
                key,
                lambda: {"results": [self.employment(person, e) for e in person["employments"]]},
            ),
        }
