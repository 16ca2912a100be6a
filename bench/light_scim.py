"""A SCIM app that costs little CPU per request, for bench/latency_app.py `--light`: users and groups
in dicts, each group's members in an insertion-ordered dict, so a member PATCH is O(1) whatever the
group's size. scim2-server validates and copies a whole group on every PATCH (~5 ms of CPU for 200
members); one such process serving three engines on a 2-core machine set the pace of the scale-out
figure, which is meant to measure the engines against an app with 100 ms latency.

Still a truthful SCIM app for what the engine relies on: writes answer the resource they made, so
the engine's confirmation reads what the app holds; filters `userName eq` (any case), `externalId
eq`, `emails.value eq`, `displayName eq` and `meta.lastModified gt`; members added by `add members`,
removed by the RFC 7644 filter path `members[value eq "id"]`, replaced whole by `replace members` or a
PUT; a member must be an existing user. User PATCHes (none in an initial sync) go through
scim2-models' PatchOp. Anything else is refused with the RFC's 400, as a partial SCIM app does.
Discovery (/ServiceProviderConfig aside, announced here: no ETags, no bulk) is scim2-server's.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Awaitable, Callable, MutableMapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs

from scim2_models import Context, EnterpriseUser, PatchOp, User
from starlette.requests import ClientDisconnect, Request

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
Answer = tuple[int, dict[str, Any] | None]

ERROR = "urn:ietf:params:scim:api:messages:2.0:Error"
LIST = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
SCHEMA = {kind: f"urn:ietf:params:scim:schemas:core:2.0:{kind[:-1]}" for kind in ("Users", "Groups")}
CONFIG = {
    "schemas": ["urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"],
    "patch": {"supported": True},
    "bulk": {"supported": False, "maxOperations": 0, "maxPayloadSize": 0},
    "filter": {"supported": True, "maxResults": 1000},
    "changePassword": {"supported": False},
    "sort": {"supported": False},
    "etag": {"supported": False},
    "authenticationSchemes": [],
}
FILTER = re.compile(r'^\s*([\w.:]+)\s+(eq|gt)\s+("(?:[^"\\]|\\.)*")\s*$', re.IGNORECASE)
MEMBER_PATH = re.compile(r'^members\[\s*value\s+eq\s+("(?:[^"\\]|\\.)*")\s*\]$', re.IGNORECASE)
# caseExact false (RFC 7643 §4), by their lower-cased names; attribute names are case-insensitive too
CASE_FREE = {name.lower(): name for name in ("userName", "displayName", "emails.value")}


def _error(status: int, detail: str, scim_type: str | None = None) -> Answer:
    body = {"schemas": [ERROR], "status": str(status), "detail": detail}
    return status, body | ({"scimType": scim_type} if scim_type else {})


def _values(resource: dict[str, Any], attribute: str) -> list[str]:
    if attribute == "emails.value":
        return [str(e.get("value")) for e in resource.get("emails") or [] if isinstance(e, dict)]
    if attribute == "meta.lastModified":
        return [resource["meta"]["lastModified"]]
    value = resource.get(attribute)
    return [str(value)] if value is not None else []


def _matcher(filter_: str) -> Callable[[dict[str, Any]], bool] | None:
    found = FILTER.match(filter_)
    if found is None:
        return None
    attribute, op, wanted = found[1], found[2].lower(), str(json.loads(found[3]))
    if op == "gt":
        if attribute != "meta.lastModified":
            return None
        since = datetime.fromisoformat(wanted)
        return lambda r: datetime.fromisoformat(r["meta"]["lastModified"]) > since
    if attribute.lower() in CASE_FREE:
        wanted, attribute = wanted.lower(), CASE_FREE[attribute.lower()]
        return lambda r: wanted in (v.lower() for v in _values(r, attribute))
    return lambda r: wanted in _values(r, attribute)


class LightScim:
    """The ASGI app: `discovery` answers the schemas and resource types (rarely asked)."""

    def __init__(self, discovery: Callable[[Scope, Receive, Send], Awaitable[None]]):
        self.discovery = discovery
        self.stored: dict[str, dict[str, dict[str, Any]]] = {"Users": {}, "Groups": {}}
        self.members: dict[str, dict[str, dict[str, Any]]] = {}  # group id → member value → member
        self.user_names: dict[str, str] = {}  # lower-cased userName → id: unique, as apps keep it
        self.external_ids: dict[str, str] = {}  # externalId → id

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        parts = [p for p in scope.get("path", "").split("/") if p]
        if not parts or parts[0] not in self.stored:
            if parts == ["ServiceProviderConfig"]:
                return await _send(send, 200, CONFIG)
            return await self.discovery(scope, receive, send)
        try:
            body = await Request(scope, receive).body()
        except ClientDisconnect:  # an engine killed -9 mid-request (the wave's kill): nothing to answer
            return None
        query = {k: v[-1] for k, v in parse_qs(scope.get("query_string", b"").decode()).items()}
        try:
            document = json.loads(body) if body else {}
        except ValueError:
            return await _send(send, *_error(400, "not JSON", "invalidSyntax"))
        status, answer = self.handle(scope["method"], parts[0], parts[1] if len(parts) > 1 else None, query, document)
        await _send(send, status, answer)

    def handle(self, method: str, kind: str, id_: str | None, query: dict[str, str], body: dict[str, Any]) -> Answer:
        if id_ is None:
            if method == "GET":
                return self.search(kind, query)
            return self.create(kind, body) if method == "POST" else _error(405, f"{method} /{kind}")
        if id_ not in self.stored[kind]:
            return _error(404, f"{kind}/{id_} not found")
        if method == "GET":
            return 200, self.shown(kind, id_, query)
        if method == "DELETE":
            self.delete(kind, id_)
            return 204, None
        if method == "PUT":
            return self.replace(kind, id_, body)
        if method == "PATCH":
            return self.patch_group(id_, body) if kind == "Groups" else self.patch_user(id_, body)
        return _error(405, f"{method} /{kind}/{id_}")

    def shown(self, kind: str, id_: str, query: dict[str, str]) -> dict[str, Any]:
        resource = self.stored[kind][id_]
        if kind == "Users" or "members" in query.get("excludedAttributes", ""):
            return resource
        return {**resource, "members": list(self.members[id_].values())}

    def search(self, kind: str, query: dict[str, str]) -> Answer:
        found = list(self.stored[kind])
        indexed = self._indexed(kind, query.get("filter") or "")
        if indexed is not None:
            found = indexed
        elif query.get("filter"):
            matches = _matcher(query["filter"])
            if matches is None:
                return _error(400, f"filter {query['filter']!r} is not supported", "invalidFilter")
            found = [id_ for id_ in found if matches(self.stored[kind][id_])]
        start, count = max(1, int(query.get("startIndex") or 1)), min(1000, int(query.get("count") or 100))
        page = [self.shown(kind, id_, query) for id_ in found[start - 1 : start - 1 + count]]
        return 200, {
            "schemas": [LIST],
            "totalResults": len(found),
            "startIndex": start,
            "itemsPerPage": len(page),
            "Resources": page,
        }

    def _indexed(self, kind: str, filter_: str) -> list[str] | None:
        """The engine's lookups by userName and externalId, without a scan of every user."""
        found = FILTER.match(filter_) if kind == "Users" else None
        if found is None or found[2].lower() != "eq" or found[1].lower() not in ("username", "externalid"):
            return None
        wanted = str(json.loads(found[3]))
        if found[1].lower() == "username":
            id_ = self.user_names.get(wanted.lower())
        else:
            id_ = self.external_ids.get(wanted)
        return [id_] if id_ is not None else []

    def _stamp(self, kind: str, id_: str, resource: dict[str, Any], created: str | None = None) -> dict[str, Any]:
        now = datetime.now(UTC).isoformat()
        meta = {"resourceType": kind[:-1], "created": created or now, "lastModified": now, "location": f"/{kind}/{id_}"}
        resource = {k: v for k, v in resource.items() if k not in ("id", "meta", "members")}
        self.stored[kind][id_] = {**resource, "schemas": resource.get("schemas") or [SCHEMA[kind]], "id": id_}
        self.stored[kind][id_]["meta"] = meta
        return self.stored[kind][id_]

    def _unknown_members(self, members: list[Any]) -> list[Any]:
        return [m for m in members if not isinstance(m, dict) or m.get("value") not in self.stored["Users"]]

    def _owned_name(self, resource: dict[str, Any], id_: str | None) -> Answer | None:
        name = str(resource.get("userName") or "").lower()
        if not name:
            return _error(400, "userName is required", "invalidValue")
        holder = self.user_names.get(name)
        return _error(409, f"userName {name!r} is taken", "uniqueness") if holder not in (None, id_) else None

    def _keys(self, id_: str, user: dict[str, Any], held: bool) -> None:
        keys = ((self.user_names, str(user["userName"]).lower()), (self.external_ids, user.get("externalId")))
        for index, key in keys:
            if key and held:
                index[key] = id_
            elif key and index.get(key) == id_:
                del index[key]

    def create(self, kind: str, body: dict[str, Any]) -> Answer:
        id_ = uuid.uuid4().hex
        if kind == "Users":
            refused = self._owned_name(body, None)
            if refused:
                return refused
            self._keys(id_, body, True)
        elif not body.get("displayName"):
            return _error(400, "displayName is required", "invalidValue")
        elif self._unknown_members(body.get("members") or []):
            return _error(400, "members must be existing users", "invalidValue")
        else:
            self.members[id_] = {str(m["value"]): m for m in body.get("members") or []}
        self._stamp(kind, id_, body)
        return 201, self.shown(kind, id_, {})

    def replace(self, kind: str, id_: str, body: dict[str, Any]) -> Answer:
        if kind == "Users":
            refused = self._owned_name(body, id_)
            if refused:
                return refused
            self._keys(id_, self.stored[kind][id_], False)
            self._keys(id_, body, True)
        elif self._unknown_members(body.get("members") or []):
            return _error(400, "members must be existing users", "invalidValue")
        else:
            self.members[id_] = {str(m["value"]): m for m in body.get("members") or []}
        self._stamp(kind, id_, body, self.stored[kind][id_]["meta"]["created"])
        return 200, self.shown(kind, id_, {})

    def delete(self, kind: str, id_: str) -> None:
        gone = self.stored[kind].pop(id_)
        if kind == "Groups":
            del self.members[id_]
            return
        self._keys(id_, gone, False)
        for members in self.members.values():
            members.pop(id_, None)

    def patch_group(self, id_: str, body: dict[str, Any]) -> Answer:
        members, group = dict(self.members[id_]), dict(self.stored["Groups"][id_])  # all or nothing
        for operation in body.get("Operations") or []:
            op, path, value = str(operation.get("op", "")).lower(), operation.get("path"), operation.get("value")
            removed = MEMBER_PATH.match(str(path or ""))
            if op == "remove" and removed:
                members.pop(str(json.loads(removed[1])), None)
            elif op in ("add", "replace") and path == "members" and isinstance(value, list):
                if self._unknown_members(value):
                    return _error(400, "members must be existing users", "invalidValue")
                members = ({} if op == "replace" else members) | {str(m["value"]): m for m in value}
            elif op == "replace" and path in (None, "displayName") and value:
                group["displayName"] = value["displayName"] if isinstance(value, dict) else value
            else:
                return _error(400, f"{op} {path!r} is not supported here", "invalidPath")
        self.members[id_] = members
        self._stamp("Groups", id_, group, group["meta"]["created"])
        return 200, self.shown("Groups", id_, {})

    def patch_user(self, id_: str, body: dict[str, Any]) -> Answer:
        try:
            model = User[EnterpriseUser]
            user = model.model_validate(self.stored["Users"][id_], scim_ctx=Context.RESOURCE_REPLACEMENT_REQUEST)
            PatchOp[model].model_validate(body, scim_ctx=Context.RESOURCE_PATCH_REQUEST).patch(user)
        except ValueError as exc:  # pydantic's ValidationError and scim2-models' SCIM errors alike
            return _error(400, str(exc), "invalidValue")
        return self.replace("Users", id_, user.model_dump(scim_ctx=Context.RESOURCE_REPLACEMENT_REQUEST))


async def _send(send: Send, status: int, body: dict[str, Any] | None) -> None:
    payload = json.dumps(body).encode() if body is not None else b""
    headers = [(b"content-type", b"application/scim+json")] if body is not None else []
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": payload})
