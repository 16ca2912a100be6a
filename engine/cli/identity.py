"""`provisioner identity`: which records are one person and why; link two records the rules did not
join, or keep one apart (docs/identity.md). Events go through the outbox: a running engine (or the
next `sync`) re-plans the person."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Annotated

import typer
from rich.table import Table

from provisioner.engine.cli.common import _load, _store_or_exit, console, err
from provisioner.engine.cli.options import DEFAULT_CONFIG, ConfigOpt, JsonOpt
from provisioner.engine.cli.safe import shown
from provisioner.engine.runtime.usecases.identity import IdentityRules
from provisioner.engine.runtime.usecases.identity_manual import Decision
from provisioner.engine.runtime.usecases.identity_manual import link as link_records
from provisioner.engine.runtime.usecases.identity_manual import unlink as unlink_record
from provisioner.engine.store import Store

identity_app = typer.Typer(help="One person across records and sources.", no_args_is_help=True, rich_markup_mode=None)

Record = Annotated[str, typer.Argument(metavar="ID", help="a worker id, <source>:<remote id>")]


@identity_app.command("list")
def list_identities(config: ConfigOpt = DEFAULT_CONFIG, as_json: JsonOpt = False) -> None:
    """Records joined to another, by person: the anchor first, and why each was joined."""
    store = _store_or_exit(_load(config, secrets=False))
    try:
        members = store.identities.all()
    finally:
        store.close()
    if as_json:
        print(json.dumps([m.__dict__ for m in members], indent=2))
        return
    if not members:
        console.print("no joined records")
        return
    table = Table(title="identities")
    for column in ("person", "record", "why", "by hand"):
        table.add_column(column)
    for m in members:
        table.add_row(shown(m.person_id), shown(m.worker_id), shown(m.why), "yes" if m.manual else "")
    console.print(table)


@identity_app.command("link")
def link(person: Record, record: Record, config: ConfigOpt = DEFAULT_CONFIG) -> None:
    """RECORD (and the records joined to it) becomes part of PERSON's person: one set of accounts."""
    _decide(config, lambda store, rules: link_records(store, rules, person, record))


@identity_app.command("unlink")
def unlink(record: Record, config: ConfigOpt = DEFAULT_CONFIG) -> None:
    """RECORD becomes a person of its own again, with accounts of its own; the rules leave it apart."""
    _decide(config, lambda store, rules: unlink_record(store, rules, record))


def _decide(config: ConfigOpt, decide: Callable[[Store, IdentityRules | None], Decision]) -> None:
    cfg = _load(config, secrets=False)
    store = _store_or_exit(cfg)
    try:
        decision = decide(store, IdentityRules.of(cfg))
    except (LookupError, ValueError) as exc:
        err.print(f"[red]error[/red] {shown(str(exc))}")
        raise typer.Exit(1) from None
    finally:
        store.close()
    for line in decision.said:
        console.print(shown(line))
    if decision.events:
        console.print(f"{len(decision.events)} event(s) queued: the engine re-plans {shown(decision.person_id)}")
