"""The habits of SCIM apps seen in the field, each as a Front (tests/scim_front.py) over a real
server: the app answers as it does, the server behind it holds the truth a test reads back.

- put_ignores_members: removal by filter path refused (501), the Entra value list applied, a PUT's
  `members` silently ignored, `replace` of the members refused (the widely used server of issue 21);
- removal_ignored: 200 to a member removal by filter path or value list, nothing removed;
- members_by_user_name: a group's `members[].value` listed as the userName;
- requires_members: a group create without `members` refused (400);
- refuses_department: 400 invalidPath for the enterprise `department`, by PATCH or by PUT;
- some_removal_forms: filter path, value list and replace all refused (501): only a PUT works;
- no_group_patch: PATCH on groups refused (501) and `members` ignored in a PUT: no membership change
  can be made at all, so every one must be reported failed, never claimed;
- members_by_put / members_by_replace: no ETags, and a group's members change only by a
  read-modify-PUT (no PATCH) or by a `replace` of the whole list: two writers can undo each other.
"""

from __future__ import annotations

from typing import Any

import httpx
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from tests.scim_front import Front, scim_error

DEPT = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department"
ENTERPRISE = DEPT.rsplit(":", 1)[0]


def _ops(body: Any) -> list[dict[str, Any]]:
    return list(body.get("Operations") or []) if isinstance(body, dict) else []


def _member_op(op: dict[str, Any], kind: str) -> bool:
    """kind: filter (remove members[...]), value (remove members + value list), replace."""
    path, verb = str(op.get("path") or ""), str(op.get("op") or "").lower()
    if kind == "filter":
        return verb == "remove" and path.startswith("members[")
    if kind == "value":
        return verb == "remove" and path == "members"
    return verb == "replace" and path == "members"


def _refuse(forms: tuple[str, ...]) -> Any:
    def intercept(method: str, path: str, body: Any, request: Request) -> Response | None:
        if method == "PATCH" and path.startswith("/Groups/"):
            for op in _ops(body):
                if any(_member_op(op, form) for form in forms):
                    return scim_error(501, f"PATCH {op.get('op')} {op.get('path')} is not implemented")
        return None

    return intercept


def _current_members(upstream: str, path: str) -> list[dict[str, Any]]:
    return list(httpx.get(f"{upstream}{path}").json().get("members") or [])


def put_ignores_members(upstream: str) -> Front:
    refuse = _refuse(("filter", "replace"))

    def to_server(method: str, path: str, body: Any) -> Any:
        if method == "PUT" and path.startswith("/Groups/"):
            return {**body, "members": _current_members(upstream, path)}
        if method == "PATCH" and path.startswith("/Groups/"):  # the value list, done the server's way
            ops = []
            for op in _ops(body):
                if _member_op(op, "value"):
                    ops += [{"op": "remove", "path": f'members[value eq "{m["value"]}"]'} for m in op["value"]]
                else:
                    ops.append(op)
            return {**body, "Operations": ops}
        return body

    return Front(upstream, intercept=refuse, rewrite_request=to_server)


def removal_ignored(upstream: str) -> Front:
    def intercept(method: str, path: str, body: Any, request: Request) -> Response | None:
        if method == "PATCH" and path.startswith("/Groups/"):
            if any(_member_op(op, "filter") or _member_op(op, "value") for op in _ops(body)):
                return JSONResponse(httpx.get(f"{upstream}{path}").json())  # 200, the group as it was
        return None

    return Front(upstream, intercept=intercept)


def members_by_user_name(upstream: str) -> Front:
    names: dict[str, str] = {}

    def name_of(user_id: str) -> str:
        if user_id not in names:
            names[user_id] = str(httpx.get(f"{upstream}/Users/{user_id}").json().get("userName") or user_id)
        return names[user_id]

    def group(resource: dict[str, Any]) -> dict[str, Any]:
        if "members" not in resource:
            return resource
        return {**resource, "members": [{"value": name_of(str(m["value"]))} for m in resource["members"]]}

    def shown(method: str, path: str, body: Any) -> Any:
        if not path.startswith("/Groups") or not isinstance(body, dict):
            return body
        if "Resources" in body:
            return {**body, "Resources": [group(r) for r in body["Resources"]]}
        return group(body)

    return Front(upstream, rewrite_answer=shown)


def requires_members(upstream: str) -> Front:
    def intercept(method: str, path: str, body: Any, request: Request) -> Response | None:
        if method == "POST" and path == "/Groups" and "members" not in (body or {}):
            return scim_error(400, "Field 'members' is required", "invalidValue")
        return None

    return Front(upstream, intercept=intercept)


def refuses_department(upstream: str) -> Front:
    def intercept(method: str, path: str, body: Any, request: Request) -> Response | None:
        if not path.startswith("/Users/"):
            return None
        if method == "PATCH" and any(str(op.get("path")) == DEPT for op in _ops(body)):
            return scim_error(400, f"attribute {DEPT} is not writable here", "invalidPath")
        if method == "PUT" and isinstance(body, dict):
            held = (httpx.get(f"{upstream}{path}").json().get(ENTERPRISE) or {}).get("department")
            if (body.get(ENTERPRISE) or {}).get("department") != held:
                return scim_error(400, f"attribute {DEPT} is not writable here", "invalidPath")
        return None

    return Front(upstream, intercept=intercept)


def some_removal_forms(upstream: str) -> Front:
    return Front(upstream, intercept=_refuse(("filter", "value", "replace")))


def no_group_patch(upstream: str) -> Front:
    def intercept(method: str, path: str, body: Any, request: Request) -> Response | None:
        if method == "PATCH" and path.startswith("/Groups/"):
            return scim_error(501, "PATCH of groups is not implemented")
        return None

    def to_server(method: str, path: str, body: Any) -> Any:
        if method == "PUT" and path.startswith("/Groups/"):
            return {**body, "members": _current_members(upstream, path)}
        return body

    return Front(upstream, intercept=intercept, rewrite_request=to_server)


def without(*features: str) -> Any:
    """An answer rewrite: the ServiceProviderConfig announces these features unsupported."""

    def shown(method: str, path: str, body: Any) -> Any:
        if path.rstrip("/").endswith("ServiceProviderConfig") and isinstance(body, dict):
            return {**body, **{feature: {"supported": False} for feature in features}}
        return body

    return shown


def members_by_put(upstream: str) -> Front:
    return Front(upstream, rewrite_answer=without("patch", "etag"))


def members_by_replace(upstream: str) -> Front:
    def intercept(method: str, path: str, body: Any, request: Request) -> Response | None:
        if method == "PATCH" and path.startswith("/Groups/"):
            for op in _ops(body):
                if str(op.get("path") or "").startswith("members") and not _member_op(op, "replace"):
                    return scim_error(501, f"PATCH {op.get('op')} {op.get('path')} is not implemented")
        return None

    return Front(upstream, intercept=intercept, rewrite_answer=without("etag"))


HABITS = {
    "put-ignores-members": put_ignores_members,
    "removal-ignored": removal_ignored,
    "members-by-userName": members_by_user_name,
    "requires-members": requires_members,
    "refuses-department": refuses_department,
    "some-removal-forms": some_removal_forms,
    "no-group-patch": no_group_patch,
}
