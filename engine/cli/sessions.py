"""`provisioner sessions`: who is logged in to the console, and ending a login from here (a lost
laptop, a colleague who left) without changing api.token for everyone."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.table import Table

from provisioner.engine.cli.common import _load, _store_or_exit, console, err
from provisioner.engine.cli.options import DEFAULT_CONFIG, ConfigOpt, JsonOpt
from provisioner.engine.cli.safe import shown
from provisioner.engine.kit.words import plural

sessions_app = typer.Typer(help="List and revoke console sessions.", no_args_is_help=True, rich_markup_mode=None)


@sessions_app.command("list")
def list_sessions(config: ConfigOpt = DEFAULT_CONFIG, as_json: JsonOpt = False) -> None:
    """Console sessions still valid: an id prefix (for revoke), when it began, where from."""
    store = _store_or_exit(_load(config, secrets=False))
    try:
        rows = store.sessions.list()
    finally:
        store.close()
    if as_json:
        print(
            json.dumps([{"id": i[:8], "since": f"{at:%Y-%m-%dT%H:%M:%S}Z", "from": a} for i, at, a in rows], indent=2)
        )
        return
    if not rows:
        console.print("no console sessions")
        return
    table = Table(title="console sessions")
    for column in ("id", "since (UTC)", "from"):
        table.add_column(column)
    for session_id, issued, address in rows:
        table.add_row(session_id[:8], f"{issued:%Y-%m-%d %H:%M:%S}", shown(address))
    console.print(table)


@sessions_app.command("revoke")
def revoke(
    session: Annotated[str, typer.Argument(help="An id (or its first 8 characters) from `sessions list`; * for all.")],
    config: ConfigOpt = DEFAULT_CONFIG,
) -> None:
    """End a console session now: its cookie stops working on every engine process."""
    if session != "*" and len(session) < 8:
        err.print("[red]error[/red] give at least the 8 characters `sessions list` shows, or * for all")
        raise typer.Exit(2)
    store = _store_or_exit(_load(config, secrets=False))
    try:
        ended = store.sessions.revoke(session)
    finally:
        store.close()
    console.print(f"{plural(ended, 'session')} revoked")
    if not ended:
        raise typer.Exit(1)
