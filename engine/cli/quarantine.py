"""`provisioner quarantine`: the records each source's latest poll held back, and why."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from provisioner.engine.cli.common import ConfigOpt, _load, console, err
from provisioner.engine.store import Store


def quarantine(
    config: ConfigOpt,
    source: Annotated[str | None, typer.Option(help="Only this source.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON array.")] = False,
) -> None:
    """Records the latest poll of each source held back (duplicate ids, unreadable rows, shared work
    emails, invalid values): source, record id or line, reason. Fix them at the source; the next
    poll takes them in."""
    cfg = _load(config)
    known = [s.name for s in cfg.sources]
    if source is not None and source not in known:
        err.print(f"[red]error[/red] no source {source!r} in {config} (known: {', '.join(known)})")
        raise typer.Exit(2)
    rows = [r for r in Store(cfg.store.url).quarantine.records(source) if r.source in known]
    if as_json:
        records = [{"source": r.source, "record": r.remote_id, "line": r.line, "reason": r.reason} for r in rows]
        print(json.dumps(records, indent=2))
        return
    table = Table(title=f"quarantine: {len(rows)} records held back")
    for column in ("source", "record", "reason"):
        table.add_column(column)
    for r in rows:
        where = r.remote_id or (f"line {r.line}" if r.line else "?")
        table.add_row(r.source, escape(where), escape(r.reason))
    console.print(table)
