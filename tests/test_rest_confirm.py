"""The REST writer counts a write as done only when the app's answer (when it answers with the
account) shows it: a small app over HTTP that answers 200 to every change and applies only the name."""

from __future__ import annotations

from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from provisioner.engine.config import TargetConfig
from provisioner.engine.contracts.models import Outcome, Worker
from provisioner.engine.kit.servers import serve_asgi
from provisioner.targets.rest import RestTarget

pytestmark = pytest.mark.fast


def stubborn_app() -> Starlette:
    users: dict[str, dict[str, Any]] = {}

    async def create(request: Request) -> JSONResponse:
        user = {**(await request.json())["user"], "id": str(len(users) + 1), "active": True}
        users[user["id"]] = user
        return JSONResponse({"user": user}, status_code=201)

    async def change(request: Request) -> JSONResponse:
        user = users[request.path_params["id"]]
        user["name"] = (await request.json())["user"].get("name", user["name"])  # keeps nothing else
        return JSONResponse({"user": user})

    return Starlette(routes=[Route("/users", create, methods=["POST"]), Route("/users/{id}", change, methods=["PUT"])])


def settings(url: str) -> TargetConfig:
    put = {"method": "PUT", "path": "/users/{{ account_id }}", "result": "user"}
    return TargetConfig.model_validate(
        {
            "name": "stubborn",
            "type": "rest",
            "base_url": url,
            "mapping": {"name": "{{ worker.first_name }}", "email": "{{ worker.work_email }}"},
            "account": {"id": "id", "active": "active"},
            "operations": {
                "lookup": {"path": "/users/none"},
                "create": {"method": "POST", "path": "/users", "body": {"user": "attributes"}, "result": "user"},
                "update": {**put, "body": {"user": "attributes"}},
                "disable": {**put, "body": {"user": {"active": False}}},
                "enable": {**put, "body": {"user": {"active": True}}},
                "delete": {"method": "DELETE", "path": "/users/{{ account_id }}"},
                "list": {"path": "/users"},
            },
        }
    )


async def test_a_change_the_app_answers_without_applying_is_a_failure():
    with serve_asgi(stubborn_app()) as server:
        target = RestTarget.from_config(settings(server.url))
        try:
            worker = Worker(id="hr:1", source="hr", remote_id="1", first_name="Ada", work_email="ada@example.com")
            created = await target.create(worker, {"name": "Ada", "email": "ada@example.com"})
            renamed = await target.update(str(created.account_id), {"name": "Ada L"}, {"email": "ada@example.com"})
            moved = await target.update(str(created.account_id), {"email": "ada.l@example.com"}, {"name": "Ada L"})
            disabled = await target.disable(str(created.account_id))
        finally:
            await target.aclose()
    assert created.ok and renamed.ok and renamed.outcome is None
    assert moved.outcome is Outcome.not_applied and disabled.outcome is Outcome.not_applied
    assert not moved.ok and "did not apply: email (sent 'ada.l@example.com'" in str(moved.error)
    assert not disabled.ok and "did not apply: active (sent False, app holds True)" in str(disabled.error)
