"""`provisioner mcp`: the engine's answers for AI agents over the Model Context Protocol. The same
server runs on stdio (a local assistant, one caller per process) and on `engine.listen` under `/mcp`
(each request's bearer token is its caller: engine/runtime/http/mcp_mount.py)."""

from __future__ import annotations

import json
import re
from typing import Any

from mcp.server.mcpserver import MCPServer
from pydantic import BaseModel, SecretStr

from provisioner.engine.config import Config
from provisioner.engine.config.access import DIRECTORY_FIELDS
from provisioner.engine.config.loader import WORKER_FIELDS
from provisioner.engine.config.redact import redacted
from provisioner.engine.contracts.models import Worker
from provisioner.engine.runtime.mcp.answers import Answers
from provisioner.engine.runtime.mcp.caller import Caller
from provisioner.engine.runtime.mcp.tools import read_tools, request_tools
from provisioner.engine.runtime.wiring import Parts

INSTRUCTIONS = (
    "The provisioning engine's own answers: who a person is to each app and why (explain_person), what a "
    "sync or a config change would do (plan_person, diff_config), what failed and who left but kept access. "
    "Write tools only ask: a person approves each request, and the answer says who."
)
POLICIES_URI = "provisioner://config/policies"
FIELDS_URI = "provisioner://reference/worker-fields"
_SECRET_KEY = re.compile(r"token|secret|password|private_key|api_key", re.IGNORECASE)


def secret_values(node: Any, path: str = "config") -> dict[str, str]:
    """path → value of every secret in a loaded config: SecretStr fields, and strings under a key
    that names a secret (a connector's own settings are plain dicts)."""
    found: dict[str, str] = {}
    if isinstance(node, SecretStr):
        found[path] = node.get_secret_value()
    elif isinstance(node, BaseModel):
        items = {**{k: getattr(node, k) for k in type(node).model_fields}, **(node.model_extra or {})}
        for key, value in items.items():
            found |= secret_values(value, f"{path}.{key}")
    elif isinstance(node, dict):
        for key, value in node.items():
            if isinstance(value, str) and _SECRET_KEY.search(str(key)):
                found[f"{path}.{key}"] = value
            else:
                found |= secret_values(value, f"{path}.{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            found |= secret_values(value, f"{path}[{i}]")
    return {k: v for k, v in found.items() if len(v) >= 4}


def policies_text(config: Config) -> str:
    """The config's policies as JSON (their grants' approval rules with them), no secret of the config in it."""
    body = {"policies": [p.model_dump(mode="json", exclude_none=True) for p in config.policies]}
    return redacted(json.dumps(body, indent=2), secret_values(config))


def worker_fields() -> list[dict[str, Any]]:
    """Every field a policy or mapping may name (what `validate` checks against), with its type."""
    declared = Worker.model_fields
    return [
        {
            "name": name,
            "type": _type_name(declared[name].annotation) if name in declared else "derived",
            "description": declared[name].description if name in declared else None,
            "derived": name not in Worker.model_fields,
            "directory": name in DIRECTORY_FIELDS,
        }
        for name in sorted(WORKER_FIELDS)
    ]


def _type_name(annotation: Any) -> str:
    return re.sub(r"\b[\w.]+\.(\w+)", r"\1", getattr(annotation, "__name__", None) or str(annotation))


class _LoggedServer(MCPServer):
    """Resource reads go in the provisioning log as tool calls do: who read what. A static resource's
    function is given no context, so the read is logged here, where the request's context is."""

    def __init__(self, answers: Answers):
        super().__init__("provisioner", instructions=INSTRUCTIONS, log_level="WARNING")
        self.answers = answers

    async def read_resource(self, uri: Any, context: Any = None) -> Any:
        read = await super().read_resource(uri, context)
        if context is not None:
            await self.answers.resource_read(context, str(uri))
        return read


def build_server(parts: Parts, caller: Caller | None = None) -> MCPServer:
    """The MCP server over these parts; `caller`: the one caller of a stdio process (HTTP: None)."""
    answers = Answers(parts.store, caller, secret_values(parts.config).values())
    server: MCPServer = _LoggedServer(answers)
    read_tools(server, parts, answers)
    request_tools(server, parts, answers)

    @server.resource(POLICIES_URI, name="policies", mime_type="application/json")
    def policies() -> str:
        """The running config's policies and approval rules, secrets redacted."""
        return policies_text(parts.config)

    @server.resource(FIELDS_URI, name="worker-fields", mime_type="application/json")
    def fields() -> str:
        """The Worker fields a policy condition or mapping may name; `directory` ones are what an agent
        token with `sees: directory` is shown."""
        return json.dumps(worker_fields(), indent=2)

    return server
