"""Who calls a tool: the token they presented, as the log names it, and which Worker fields their
answers may show. The same rule for stdio and HTTP; the transports only say which token it was."""

from __future__ import annotations

from dataclasses import dataclass

from provisioner.engine.config import Config

SHARED_NAME = "api.token"  # how the log names the shared token's holder, who has no name


@dataclass(frozen=True)
class Caller:
    name: str
    visible: frozenset[str] | None = None  # the Worker fields answers show; None for all

    @property
    def sees_all(self) -> bool:
        return self.visible is None


def caller_of(config: Config, name: str | None, operator: bool) -> Caller | None:
    """The caller behind a valid token (`name` None for the shared api.token); None when that
    token may not use the MCP surface: only operators and agents may."""
    if name is None:
        return Caller(SHARED_NAME) if operator else None
    token = next((t for t in config.api.tokens if t.name == name), None)
    if token is None or not ({"operator", "agent"} & set(token.roles)):
        return None
    return Caller(token.name, token.visible_fields())


def refusal(name: str | None) -> str:
    """Why a valid token that is neither an operator's nor an agent's is refused."""
    return f"{name or 'this token'} may not use the MCP surface: give it the agent or operator role"
