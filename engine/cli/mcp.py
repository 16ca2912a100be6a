"""`provisioner mcp`: the MCP surface on stdio, for an AI assistant on this machine (the same tools
the engine serves under /mcp on engine.listen)."""

from __future__ import annotations

import asyncio
import os
from typing import Annotated

import typer

from provisioner.engine.cli.common import _load, _parts_or_exit, err
from provisioner.engine.cli.logs import LogFormat, LogFormatOpt, setup
from provisioner.engine.cli.options import DEFAULT_CONFIG, ConfigOpt, VerboseOpt
from provisioner.engine.cli.safe import shown
from provisioner.engine.kit import tracing

TOKEN_ENV = "PROVISIONER_MCP_TOKEN"


def mcp_command(
    config: ConfigOpt = DEFAULT_CONFIG,
    token_env: Annotated[
        str,
        typer.Option("--token-env", metavar="NAME", help="The environment variable holding the caller's token."),
    ] = TOKEN_ENV,
    verbose: VerboseOpt = False,
    log_format: LogFormatOpt = LogFormat.auto,
) -> None:
    """The MCP server on stdio for a local AI assistant: read tools (explain, plan, diff, status,
    failures, log) and requests a person approves. The caller is the token in $PROVISIONER_MCP_TOKEN
    (or --token-env NAME): a named token with the agent or operator role, or api.token. Logs go to
    stderr; stdout carries the protocol."""
    setup(verbose, log_format)
    # Imported here, as `run` does with the HTTP server: every other command starts without them.
    from provisioner.engine.runtime.http.auth import Auth
    from provisioner.engine.runtime.mcp import build_server, caller_of, refusal

    cfg = _load(config, secrets=False)  # a source that cannot be read leaves plan_person the snapshot
    # A token even on stdio: the caller is the assistant, not the person who started it, and only a
    # token names it in the provisioning log and bounds which Worker fields it reads. Whoever holds
    # the shared api.token is an operator here as everywhere.
    if not token_env.strip():
        err.print("[red]error[/red] --token-env names no variable: give the name of the one holding the token")
        raise typer.Exit(2)
    presented = os.environ.get(token_env, "").strip()
    if not presented:
        err.print(f"[red]error[/red] set {token_env} to your agent's token (api.tokens, role agent) or api.token")
        raise typer.Exit(2)
    principal = Auth(cfg).principal(presented)
    if principal is None:
        err.print(f"[red]error[/red] {token_env} holds no token of {config} (api.token or api.tokens)")
        raise typer.Exit(2)
    caller = caller_of(cfg, principal.name, principal.operator)
    if caller is None:
        err.print(f"[red]error[/red] {shown(refusal(principal.name))}")
        raise typer.Exit(2)
    parts = _parts_or_exit(cfg)
    tracing.install(**cfg.telemetry.model_dump())  # each tool call a trace, as over HTTP

    async def serve() -> None:
        try:
            await build_server(parts, caller).run_stdio_async()
        finally:
            await parts.aclose()

    asyncio.run(serve())
