"""The one path every tool call takes: who is calling, the read model (or request) computed off the
event loop, what the caller may read of it, a row in the provisioning log, and the MCP result
(structured content plus the same as readable text)."""

from __future__ import annotations

import inspect
import json
import logging
from collections.abc import Callable, Iterable
from typing import Any

import anyio
from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import CallToolResult, TextContent
from pydantic_core import to_jsonable_python

from provisioner.engine.contracts.records import MCP_CALL, LogEntry
from provisioner.engine.runtime.mcp.caller import Caller
from provisioner.engine.runtime.mcp.pii import hidden_values, people_named, redact, without
from provisioner.engine.store import Store

log = logging.getLogger("provisioner.mcp")

CALLER_KEY = "mcp_caller"  # where the HTTP guard leaves the caller, in the request's state
ACTION = MCP_CALL
SECRET = "[secret]"
_SHOWN_ARGUMENT = 200  # an argument longer than this (a proposed config) is logged by its length


def _logged(arguments: dict[str, Any]) -> dict[str, Any]:
    return {
        k: (f"<{len(v)} characters>" if isinstance(v, str) and len(v) > _SHOWN_ARGUMENT else v)
        for k, v in arguments.items()
        if v is not None
    }


class Answers:
    def __init__(self, store: Store, caller: Caller | None = None, secrets: Iterable[str] = ()):
        self.store = store
        self.caller = caller  # stdio: the one caller of this process; HTTP: None, each request says
        # The config's secrets, told to no caller: a mapping may write one (an initial password),
        # and a plan, a diff or a log row would show it as written.
        self.secrets = frozenset(secrets)

    def who(self, ctx: Context) -> Caller:
        state = getattr(ctx.request_context.request, "state", None)
        caller = getattr(state, CALLER_KEY, None) if state is not None else None
        caller = caller if isinstance(caller, Caller) else self.caller
        if caller is None:  # a transport that did not authenticate: never answered
            raise ToolError("no caller: this surface needs a token")
        return caller

    async def answer(
        self,
        ctx: Context,
        tool: str,
        arguments: dict[str, Any],
        compute: Callable[[Caller], Any],
        summary: Callable[[Any], str],
        about: Callable[[], Iterable[str]] | None = None,
    ) -> CallToolResult:
        """Run `compute` for the caller (in a thread: the store blocks; a coroutine it returns is
        awaited here), then redact, log and answer. LookupError, ValueError and PermissionError are
        the caller's errors: answered as a tool error, logged as a failure. `about`: the people an
        answer speaks of without naming them (an error text counted per app), for the redaction."""
        caller = self.who(ctx)
        try:
            value = await anyio.to_thread.run_sync(compute, caller)
            if inspect.isawaitable(value):
                value = await value
        except (LookupError, ValueError, PermissionError) as exc:
            await self._log(caller, tool, arguments, str(exc))
            raise ToolError(str(exc)) from None
        except Exception as exc:  # the engine's own failure: logged by its kind, its text may carry data
            said = f"the engine could not answer ({type(exc).__name__})"
            log.warning("MCP tool %s failed: %s", tool, type(exc).__name__)
            log.debug("MCP tool %s failed", tool, exc_info=True)
            await self._log(caller, tool, arguments, said)
            raise ToolError(said) from None
        data = await anyio.to_thread.run_sync(self.shown, caller, to_jsonable_python(value), about)
        await self._log(caller, tool, arguments, None)
        structured = data if isinstance(data, dict) else {"result": data}
        text = f"{summary(data)}\n\n{json.dumps(data, indent=2, default=str)}"
        return CallToolResult(content=[TextContent(type="text", text=text)], structured_content=structured)

    def shown(self, caller: Caller, data: Any, about: Callable[[], Iterable[str]] | None = None) -> Any:
        """`data` as this caller may read it: the one place PII is limited (and secrets kept)."""
        data = without(data, self.secrets, SECRET)
        if caller.visible is None:
            return data
        named = people_named(data) | set(about() if about is not None else ())
        # Each record, and the person several joined records make (their values may differ): a few
        # bulk reads for a whole log page.
        people = [*self.store.snapshots.of_workers(named).values(), *self.store.identities.planned(named).values()]
        return redact(data, caller.visible, hidden_values(people, caller.visible))

    async def resource_read(self, ctx: Context, uri: str) -> None:
        await self._log(self.who(ctx), "read_resource", {"uri": uri}, None)

    async def _log(self, caller: Caller, tool: str, arguments: dict[str, Any], error: str | None) -> None:
        entry = LogEntry(
            worker_id=str(arguments.get("worker_id") or arguments.get("worker") or "-"),
            target=arguments.get("target"),
            action=ACTION,
            reason=f"{tool} by {caller.name}",
            attributes={"tool": tool, "token": caller.name, "arguments": _logged(arguments)},
            result="failure" if error else "success",
            error=error,
        )
        await anyio.to_thread.run_sync(self.store.log.append, [entry])
