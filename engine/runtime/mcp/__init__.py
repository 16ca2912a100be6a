"""The MCP surface for AI agents (issue #29): read tools over the engine's read models, requests a
person approves, every call logged with the token's name, answers limited to what the token sees."""

from provisioner.engine.runtime.mcp.caller import Caller, caller_of, refusal
from provisioner.engine.runtime.mcp.server import build_server

__all__ = ["Caller", "build_server", "caller_of", "refusal"]
