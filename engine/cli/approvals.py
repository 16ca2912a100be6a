"""`provisioner approvals`: the queue of grants waiting for a person's yes, and deciding them from a
terminal. Deciding takes the approver's own named token (api.tokens), as the API and the console
do: the log names who decided, and the shared api.token names nobody."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.table import Table

from provisioner.engine.cli.common import _load, _store_or_exit, console, err
from provisioner.engine.cli.options import DEFAULT_CONFIG, ConfigOpt, JsonOpt, WorkerOpt
from provisioner.engine.cli.safe import shown
from provisioner.engine.kit import tracing
from provisioner.engine.kit.words import plural
from provisioner.engine.runtime import approvals

approvals_app = typer.Typer(
    help="Grants and requests waiting for approval: list, approve, deny.", no_args_is_help=True, rich_markup_mode=None
)

TokenOpt = Annotated[
    str,
    typer.Option(
        "--token",
        envvar="PROVISIONER_TOKEN",
        show_envvar=True,
        help="Your named token from api.tokens (best through the environment variable).",
    ),
]
StateOpt = Annotated[
    str, typer.Option("--state", help="pending (the default), approved, denied, expired, void, or all.")
]
KindOpt = Annotated[str | None, typer.Option("--kind", help="grant, provision, retry or access (default: any).")]
ReasonOpt = Annotated[str | None, typer.Option("--reason", help="Why: kept in the log with your name.")]


@approvals_app.command("list")
def list_requests(
    config: ConfigOpt = DEFAULT_CONFIG,
    state: StateOpt = "pending",
    worker: WorkerOpt = None,
    kind: KindOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Approval requests, oldest first: id, kind, person, target, what it asks, who asked, who may
    decide, expiry, state."""
    store = _store_or_exit(_load(config, secrets=False))
    try:
        rows = approvals.listing(store, state, worker, kind)
    except ValueError as exc:
        err.print(f"[red]error[/red] {exc}")
        raise typer.Exit(2) from None
    finally:
        store.close()
    if as_json:
        print(json.dumps(rows, indent=2))
        return
    if not rows:
        console.print(f"no {'' if state == 'all' else state + ' '}approval requests")
        return
    table = Table(title=f"approvals: {plural(len(rows), 'request')}")
    table.add_column("id", no_wrap=True, min_width=12)  # never cut: `approve ID` needs it whole
    for column in ("kind", "person", "target", "asks", "asked by", "may decide", "expires (UTC)", "state"):
        table.add_column(column)
    table.add_column("decided")
    for r in rows:
        asked_by = f"{r['requested_by']}: {r['request_reason'] or ''}" if r["requested_by"] else "policy"
        decided = f"{r['decided_by']}: {r['reason'] or ''}" if r["decided_by"] else ""
        table.add_row(
            r["id"],
            r["kind"],
            shown(r["worker_id"] or "-"),
            r["target"] or "-",
            shown(r["asks"]),
            shown(asked_by.strip(": ")),
            r["rule"],
            r["expires_at"][:19].replace("T", " "),
            r["state"],
            shown(decided.strip(": ")),
        )
    console.print(table)


def _decide(config: ConfigOpt, request_id: str, token: str, reason: str | None, approve: bool, as_json: bool) -> None:
    cfg = _load(config, secrets=False)
    if not token:
        err.print("[red]error[/red] set PROVISIONER_TOKEN (or --token) to your own named token (api.tokens)")
        raise typer.Exit(2)
    named = approvals.named_token(cfg, token)
    approver = approvals.approver_of(cfg, named) if named is not None else None
    if approver is None:
        err.print(f"[red]error[/red] {approvals.cannot_decide(cfg, token)}")
        raise typer.Exit(2)
    store = _store_or_exit(cfg)
    tracing.install(**cfg.telemetry.model_dump())  # the decision starts the trace of what it sets off
    try:
        decided = approvals.decide(store, request_id, approver, approve, reason)
    except LookupError as exc:
        err.print(f"[red]error[/red] {exc}")
        raise typer.Exit(2) from None
    except (approvals.Refused, approvals.NotDecidable) as exc:
        err.print(f"[red]not decided[/red] {exc}")
        raise typer.Exit(1) from None
    finally:
        store.close()
    if as_json:
        print(json.dumps(decided.model_dump(mode="json"), indent=2))
        return
    after = "; a running engine applies it within one cycle, else the next sync" if approve else ""
    console.print(f"{decided.id} {decided.state.value} by {decided.decided_by}: {shown(decided.asks)}{after}")


def _verdict(approve: bool, doc: str) -> None:
    def command(
        request_id: Annotated[str, typer.Argument(help="The request's id (approvals list).")],
        token: TokenOpt = "",
        reason: ReasonOpt = None,
        config: ConfigOpt = DEFAULT_CONFIG,
        as_json: JsonOpt = False,
    ) -> None:
        _decide(config, request_id, token, reason, approve, as_json)

    command.__doc__ = doc
    approvals_app.command("approve" if approve else "deny")(command)


_verdict(True, "Approve a pending request as yourself: the person is re-planned and the grant written.")
_verdict(False, "Deny a pending request as yourself: nothing is written; asked again only when the grant changes.")
