"""A declarative REST writer for apps without SCIM: each operation is a method, a path template,
an optional JSON body, and JMESPath expressions saying where the account sits in the answer.

Presets (`targets/presets/*.yaml`) hold the whole description for a known app, so `preset:
lever-users` plus credentials is a complete target. Paging, retries, rate limits and auth are the
shared parts in `engine.http`; this file only turns operations into requests.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from functools import cache
from pathlib import Path
from typing import Any, Literal

import httpx
import jmespath
import yaml
from pydantic import BaseModel, ConfigDict, Field

from provisioner.engine.config import TargetConfig
from provisioner.engine.contracts.models import CONFLICT, Account, Outcome, Result, ResultStatus, Worker, elapsed_ms
from provisioner.engine.kit.adaptive import AdaptiveLimit
from provisioner.engine.kit.auth import AuthConfig, NoAuth
from provisioner.engine.kit.http import RetryPolicy, describe_http_error, is_transient, resilient_client
from provisioner.engine.kit.origin import relative_path
from provisioner.engine.kit.paging import NoPaging, Paging, PagingError, paginate
from provisioner.engine.kit.templating import Template

PRESETS = Path(__file__).parent / "presets"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Operation(_Strict):
    method: str = "GET"
    path: str
    params: dict[str, str] = Field(default_factory=dict)
    # "attributes": the mapped attributes as the JSON body; a dict: templates, where the value
    # "attributes" stands for them (`{user: attributes}`)
    body: Literal["attributes"] | dict[str, Any] | None = None
    conflict_status: list[int] = Field(default_factory=lambda: [409])  # create: the account exists
    result: str | None = None  # JMESPath to the account object in the answer
    items: str | None = None  # list: JMESPath to the accounts of a page
    paging: Paging = Field(default_factory=NoPaging)


class AccountShape(_Strict):
    id: str = "id"  # JMESPath
    active: str | None = None  # JMESPath giving a boolean; None = always active


class RestSettings(_Strict):
    preset: str | None = None
    auth: AuthConfig = Field(default_factory=NoAuth)
    account: AccountShape = Field(default_factory=AccountShape)
    operations: dict[
        Literal[
            "lookup", "create", "update", "disable", "enable", "delete", "list", "add_to_group", "remove_from_group"
        ],
        Operation,
    ] = Field(default_factory=dict)


@cache
def load_preset(name: str) -> dict[str, Any]:
    path = PRESETS / f"{name}.yaml"
    if path.parent != PRESETS or not path.is_file():  # a name, not a path: "../../etc/x" reads no other file
        known = ", ".join(sorted(p.stem for p in PRESETS.glob("*.yaml")))
        raise ValueError(f"unknown preset {name!r} (known: {known})")
    return yaml.safe_load(path.read_text())


def resolve(config: TargetConfig) -> tuple[TargetConfig, RestSettings]:
    """The target's own keys over its preset's: base_url, mapping, rate limits, operations."""
    own = config.model_dump(exclude_unset=True)
    preset = load_preset(own["preset"]) if own.get("preset") else {}
    merged = {**preset, **own, "operations": {**preset.get("operations", {}), **own.get("operations", {})}}
    if config.token is not None:  # the token field of targets means a bearer token here too
        merged.setdefault("auth", {"type": "bearer", "token": config.token.get_secret_value()})
    full = TargetConfig.model_validate(
        {k: v for k, v in merged.items() if k in TargetConfig.model_fields or k not in RestSettings.model_fields}
    )
    settings = RestSettings.model_validate({k: v for k, v in merged.items() if k in RestSettings.model_fields})
    if full.on_terminate.action == "delete" and "delete" not in settings.operations:
        raise ValueError(f"target {config.name!r}: on_terminate is delete, but this app has no delete operation")
    return full, settings


class RestTarget:
    def __init__(self, config: TargetConfig, settings: RestSettings):
        self.name = config.name
        self.settings = settings
        self.paths = list((config.mapping or {}).keys())
        auth, headers = settings.auth.for_httpx()
        self.http = resilient_client(
            config.base_url.rstrip("/") + "/",
            auth=auth,
            headers=headers,
            timeout=config.timeout,
            policy=RetryPolicy(max_attempts=config.max_attempts),
            rate=config.rate_limit,
            burst=config.burst,
            # requests in flight: found by AIMD up to `concurrency`, or exactly that if not adaptive
            limit=AdaptiveLimit(config.concurrency, adaptive=config.adaptive_concurrency),
            app=f"target {config.name}",
            max_response=config.max_response_bytes,
        )
        self._templates: dict[str, Template] = {}

    @classmethod
    def from_config(cls, config: TargetConfig) -> RestTarget:
        return cls(*resolve(config))

    @staticmethod
    def default_mapping(config: TargetConfig) -> dict[str, str]:
        """The preset's mapping, if the target names one."""
        return dict(resolve(config)[0].mapping or {})

    def _render(self, source: str, context: dict[str, Any]) -> str:
        template = self._templates.get(source) or self._templates.setdefault(source, Template(source))
        return template.render(**context) or ""

    def _body(self, operation: Operation, context: dict[str, Any]) -> Any:
        if operation.body == "attributes":
            return {k: v for k, v in context["attributes"].items() if v is not None}
        if isinstance(operation.body, dict):
            return {
                k: self._body(Operation(path="", body=v), context)
                if v == "attributes"
                else self._render(v, context)
                if isinstance(v, str)
                else v
                for k, v in operation.body.items()
            }
        return None

    async def _call(self, kind: str, context: dict[str, Any]) -> Any:
        operation = self.settings.operations.get(kind)  # type: ignore[call-overload]
        if operation is None:
            raise LookupError(f"target {self.name!r} has no {kind!r} operation")
        params = {k: self._render(v, context) for k, v in operation.params.items()}
        body = self._body(operation, context)
        path = relative_path(self.name, self._render(operation.path, context).lstrip("/"), query=True)
        response = await self.http.request(operation.method, path, params=params, json=body)
        if response.status_code >= 400:
            raise httpx.HTTPStatusError(describe_http_error(response), request=response.request, response=response)
        data = response.json() if response.content else {}
        return jmespath.search(operation.result, data) if operation.result else data

    def _account(self, resource: Any) -> Account:
        shape = self.settings.account
        active = True if shape.active is None else bool(jmespath.search(shape.active, resource))
        return Account(
            id=str(jmespath.search(shape.id, resource)),
            active=active,
            attributes={
                p: resource.get(p) for p in self.paths if isinstance(resource, dict) and resource.get(p) is not None
            },
        )

    async def _result(self, kind: str, context: dict[str, Any], attributes: dict[str, Any]) -> Result:
        start = time.perf_counter()
        try:
            answer = await self._call(kind, context)
        except httpx.HTTPStatusError as exc:
            conflict = self.settings.operations["create"].conflict_status if kind == "create" else []
            if exc.response.status_code in conflict:  # the account exists: the applier adopts it
                return Result(status=ResultStatus.skipped, outcome=Outcome.conflict, error=CONFLICT)
            return _failed(start, exc, context)
        except (httpx.HTTPError, LookupError) as exc:
            return _failed(start, exc, context)
        account_id = context.get("account_id") or (self._account(answer).id if answer else None)
        wrong = self._not_applied(answer, attributes) if kind in ("update", "enable", "disable") else []
        if wrong:
            error = f"the app answered success but did not apply: {'; '.join(wrong)}"
            return Result(
                status=ResultStatus.failure,
                outcome=Outcome.not_applied,
                account_id=account_id,
                error=error,
                duration_ms=elapsed_ms(start),
            )
        return Result(
            status=ResultStatus.success, account_id=account_id, attributes=attributes, duration_ms=elapsed_ms(start)
        )

    def _not_applied(self, answer: Any, attributes: dict[str, Any]) -> list[str]:
        """Where the app answers with the account, what it holds differently from what was sent
        (attributes it leaves out of its answer are not judged: many answer with a summary)."""
        if not isinstance(answer, dict) or jmespath.search(self.settings.account.id, answer) is None:
            return []  # not the account (no `result:` pointing at it): nothing to judge by
        wrong = []
        for path, sent in attributes.items():
            if path == "active":
                if self.settings.account.active is not None:
                    held = bool(jmespath.search(self.settings.account.active, answer))
                    if held is not sent:
                        wrong.append(f"active (sent {sent}, app holds {held})")
            elif path in answer and sent is not None and answer[path] != sent:
                wrong.append(f"{path} (sent {sent!r}, app holds {answer[path]!r})")
        return wrong

    # the Target protocol, and the ListsAccounts capability
    async def lookup(self, worker: Worker, link_id: str | None, attributes: dict[str, Any]) -> Account | None:
        found = await self._call("lookup", {"worker": worker, "attributes": attributes, "account_id": link_id})
        return self._account(found) if found else None

    async def create(self, worker: Worker, attributes: dict[str, Any]) -> Result:
        return await self._result("create", {"worker": worker, "attributes": attributes}, attributes)

    async def update(
        self, account_id: str, attributes: dict[str, Any], previous: dict[str, Any] | None = None
    ) -> Result:
        # REST apps mostly want the whole record on update: what we wrote before plus the change.
        full = {**(previous or {}), **attributes}
        return await self._result("update", {"account_id": account_id, "attributes": full}, attributes)

    async def enable(self, account_id: str) -> Result:
        return await self._result("enable", {"account_id": account_id, "attributes": {}}, {"active": True})

    async def disable(self, account_id: str) -> Result:
        return await self._result("disable", {"account_id": account_id, "attributes": {}}, {"active": False})

    async def delete(self, account_id: str) -> Result:
        return await self._result("delete", {"account_id": account_id, "attributes": {}}, {})

    async def set_groups(self, account_id: str, add: list[str], remove: list[str]) -> Result:
        for kind, groups in (("add_to_group", add), ("remove_from_group", remove)):
            for group in groups:
                result = await self._result(kind, {"account_id": account_id, "group": group, "attributes": {}}, {})
                if not result.ok:
                    return result
        return Result(
            status=ResultStatus.success,
            account_id=account_id,
            attributes={"groups_added": add, "groups_removed": remove},
        )

    async def list_accounts(self) -> AsyncIterator[Account]:
        operation = self.settings.operations["list"]
        context: dict[str, Any] = {"attributes": {}}
        paging = operation.paging.model_copy(update={"items": operation.items or "@"})
        params = {k: self._render(v, context) for k, v in operation.params.items()}
        try:
            async for page in paginate(self.http, self._render(operation.path, context).lstrip("/"), paging, params):
                for item in page:
                    yield self._account(item)
        except PagingError as exc:
            response = exc.response
            raise httpx.HTTPStatusError(
                describe_http_error(response), request=response.request, response=response
            ) from None

    async def aclose(self) -> None:
        await self.http.aclose()


def _failed(start: float, exc: Exception, context: dict[str, Any]) -> Result:
    return Result(
        status=ResultStatus.failure,
        account_id=context.get("account_id"),
        error=str(exc),
        duration_ms=elapsed_ms(start),
        transient=is_transient(exc),
    )
