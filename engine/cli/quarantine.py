"""`provisioner quarantine`: the records each source's latest poll held back, and why."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.table import Table

from provisioner.engine.cli.common import _load, _store_or_exit, console, err
from provisioner.engine.cli.options import DEFAULT_CONFIG, ConfigOpt, JsonOpt
from provisioner.engine.cli.safe import shown
from provisioner.engine.kit.words import plural
from provisioner.engine.runtime import views


def quarantine(
    config: ConfigOpt = DEFAULT_CONFIG,
    source: Annotated[str | None, typer.Option("--source", help="Only this source.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Records the latest poll of each source held back (duplicate ids, unreadable rows, shared work
    emails, invalid values): source, record id or line, reason. Fix them at the source; the next
    poll takes them in."""
    cfg = _load(config, secrets=False)  # the store's records alone
    try:
        rows = views.quarantine(cfg, _store_or_exit(cfg), source)
    except LookupError as exc:
        err.print(f"[red]error[/red] {shown(str(exc.args[0]))}")
        raise typer.Exit(2) from None
    if as_json:
        print(json.dumps(rows, indent=2, default=lambda value: value.isoformat()))
        return
    table = Table(title=f"quarantine: {plural(len(rows), 'record')} held back")
    for column in ("source", "record", "reason"):
        table.add_column(column)
    for r in rows:
        where = r["record"] or (f"line {r['line']}" if r["line"] else "?")
        table.add_row(r["source"], shown(where), shown(r["reason"]))
    console.print(table)
