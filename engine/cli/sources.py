"""CLI about sources: `status`, `resume`, `sources dump|check`, and `sandbox` (every vendor emulator)."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from datetime import datetime
from typing import Annotated, Any

import typer
import uvicorn
from rich.table import Table

from provisioner.engine.cli.common import _load, _store_or_exit, console, err
from provisioner.engine.cli.failures import access_lines
from provisioner.engine.cli.options import DEFAULT_CONFIG, ConfigOpt, JsonOpt
from provisioner.engine.cli.safe import shown
from provisioner.engine.contracts.protocols import SourceError
from provisioner.engine.kit.words import plural
from provisioner.engine.runtime import operations, views
from provisioner.engine.sandbox.vendors import sandbox_app, sandbox_config
from provisioner.engine.store import as_utc
from provisioner.sources import build_source

sources_app = typer.Typer(
    help="Look at what the configured sources yield, without changing state.",
    no_args_is_help=True,
    rich_markup_mode=None,
)


def _build(cfg: Any, name: str | None = None) -> list[tuple[Any, Any]]:
    chosen = [s for s in cfg.sources if name in (None, s.name)]
    if name and not chosen:
        err.print(f"[red]no source named {name!r}[/red] (known: {', '.join(s.name for s in cfg.sources)})")
        raise typer.Exit(2)
    try:
        return [(s, build_source(s.name, s.type, s.settings())) for s in chosen]
    except ValueError as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None


def status(config: ConfigOpt = DEFAULT_CONFIG, as_json: JsonOpt = False) -> None:
    """Sources (halted, failing or running, last poll, last read, quarantined records), events not yet
    applied, scheduled changes, per target the writes retrying and dead, and who still holds access
    they should not (exit 1 while anything is dead or anyone keeps access)."""
    cfg = _load(config, secrets=False)
    summary = views.status(cfg, _store_or_exit(cfg))
    # A stalled engine, one that cannot record outcomes, and access a leaver still holds need a
    # person as much as a dead letter does: exit 1 for scripts to notice.
    dead = (
        sum(t.dead for t in summary.failures.values())
        + sum(1 for e in summary.engines if e.stalled or e.recording_error)
        + len(summary.access_not_removed + summary.may_keep_access)
    )
    if as_json:
        print(summary.model_dump_json(indent=2))
        if dead:
            raise typer.Exit(1)
        return
    # Times keep their date on a wide terminal and shed the year on a narrow one: never cut mid-way.
    stamp = "%Y-%m-%d %H:%M" if console.width >= 110 else "%m-%d %H:%M"
    table = Table(title="sources (times in UTC)")
    # Short headers: seven columns and two whole timestamps fit in 80 columns.
    for col in ("source", "state", "workers", "held back", "last poll", "read", "full read"):
        table.add_column(col, no_wrap=col != "state", overflow="fold")
    for r in summary.sources:
        full = datetime.fromisoformat(r.last_full_read) if r.last_full_read else None
        table.add_row(
            r.source,
            _state(r),
            str(r.workers),
            f"[yellow]{r.quarantined}[/yellow]" if r.quarantined else "0",
            f"{as_utc(r.last_poll):{stamp}}" if r.last_poll else "never",
            r.last_read or "-",
            f"{as_utc(full):{stamp}}" if full else "-",
        )
    console.print(table)
    console.print(
        f"unapplied events: {summary.unapplied_events} · scheduled changes: {summary.scheduled}"
        + (f" (next {summary.next_scheduled:%Y-%m-%d %H:%M} UTC)" if summary.next_scheduled else "")
    )
    console.print(f"failures: {summary.retrying} retrying, {summary.dead} dead · quarantined: {summary.quarantined}")
    if summary.halted:
        console.print("a halted source holds back deprovisioning; after checking it: provisioner resume SOURCE")
    if summary.quarantined:
        console.print("quarantined records were held back by the latest poll: provisioner quarantine")
    for name, counts in summary.failures.items():
        console.print(
            f"target [bold]{name}[/bold]: {counts.retrying} retrying, {counts.dead} dead"
            + (f" · latest error: {shown(counts.latest_error)}" if counts.latest_error else "")
        )
    if summary.failures:
        console.print(f"see them: provisioner failures -c {config}")
    _print_engines(summary.engines)
    if summary.waiting_for_manager:
        console.print(
            f"waiting for their manager's account: {plural(summary.waiting_for_manager, 'person', 'people')}"
            " (provisioner explain --worker ID says whom)"
        )
    for line in access_lines(summary.access_not_removed, summary.may_keep_access):
        console.print(line)
    if dead:
        raise typer.Exit(1)


def _print_engines(engines: list[views.EngineView]) -> None:
    if not engines:
        console.print("engines: none running (none heard from in the last minute)")
        return
    table = Table(title="engines")
    for col in ("engine", "partitions", "lag", "in flight", "last progress (UTC)", "state"):
        table.add_column(col)
    for e in engines:
        state = "[green]ok[/green]"
        if e.recording_error:
            state = f"[red]cannot record outcomes[/red]: {shown(e.recording_error)}"
        elif e.stalled:
            state = "[red]stalled[/red]: work waiting, nothing recorded"
        table.add_row(
            e.id,
            ", ".join(p.rsplit(":", 1)[-1] for p in e.partitions) or "-",
            str(e.lag),
            str(e.in_flight),
            f"{e.last_progress:%H:%M:%S}" if e.last_progress else "-",
            state,
        )
    console.print(table)


def _state(row: views.SourceView) -> str:
    """Halted wins (it needs a person); a source failing to be read says why and since when."""
    if row.halted:
        return f"[red]halted[/red]: {row.reason}"
    if row.failing:
        since = f" (since {row.failing_since:%Y-%m-%d %H:%M})" if row.failing_since else ""
        return f"[red]failing[/red]: {shown(row.failing)}{since}"
    return "[green]running[/green]"


def resume(
    source: Annotated[str, typer.Argument(help="The halted source's name.")], config: ConfigOpt = DEFAULT_CONFIG
) -> None:
    """Lift a safety halt after a person looked: the next poll deprovisions what the source says."""
    cfg = _load(config, secrets=False)
    try:
        resumed = operations.resume(cfg, _store_or_exit(cfg), source)
    except operations.UnknownSource:
        err.print(f"[red]error[/red] no source {source!r} in {config}")
        raise typer.Exit(2) from None
    if resumed:
        console.print(f"[green]resumed[/green] {source}: the next poll applies its deprovisions")
    else:
        console.print(f"{source} was not halted")


@sources_app.command()
def dump(
    name: Annotated[str, typer.Argument(help="The source's name in the config.")],
    config: ConfigOpt = DEFAULT_CONFIG,
) -> None:
    """Print one normalized Worker JSON per line, as the source yields them now (a full read).

    Quarantined records are reported on stderr. Nothing is stored; the targets' secrets are not needed."""
    [(_, source)] = _build(_load(config, secrets=("sources",)), name)

    async def read() -> Any:
        try:
            return await source.read({})
        finally:
            await source.aclose()

    try:
        result = asyncio.run(read())
    except SourceError as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from None
    for worker in result.workers:
        typer.echo(worker.model_dump_json())
    for bad in result.quarantined:
        err.print(f"[yellow]quarantined[/yellow] {shown(bad.remote_id or '?')}: {shown(bad.reason)}")
    err.print(f"{plural(len(result.workers), 'worker')}, {len(result.quarantined)} quarantined")


@sources_app.command()
def check(
    config: ConfigOpt = DEFAULT_CONFIG,
    source: Annotated[str | None, typer.Option("--source", help="Only this source.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Test each source's connectivity and credentials; exit 1 if any fails. The targets' secrets are not
    needed."""
    built = _build(_load(config, secrets=("sources",)), source)

    async def probe(source: Any) -> tuple[bool, str, float]:
        started = time.perf_counter()
        try:
            detail, ok = await source.check(), True
        except (SourceError, ValueError) as exc:
            detail, ok = str(exc), False
        finally:
            await source.aclose()
        return ok, detail, (time.perf_counter() - started) * 1000

    async def probe_all() -> list[tuple[bool, str, float]]:
        return list(await asyncio.gather(*(probe(source) for _, source in built)))

    results = asyncio.run(probe_all())
    if as_json:
        rows = [
            {"source": cfg.name, "type": cfg.type, "ok": ok, "detail": detail, "ms": round(ms)}
            for (cfg, _), (ok, detail, ms) in zip(built, results, strict=True)
        ]
        print(json.dumps(rows, indent=2))
        if not all(ok for ok, _, _ in results):
            raise typer.Exit(1)
        return
    table = Table(title="sources")
    for column in ("source", "type", "result", "detail", "ms"):
        table.add_column(column)
    for (cfg, _), (ok, detail, ms) in zip(built, results, strict=True):
        table.add_row(cfg.name, cfg.type, "[green]ok[/green]" if ok else "[red]FAIL[/red]", shown(detail), f"{ms:.0f}")
    console.print(table)
    if not all(ok for ok, _, _ in results):
        raise typer.Exit(1)


def sandbox(
    port: Annotated[int, typer.Option(help="Port to serve on.")] = 8099,
    people: Annotated[int, typer.Option(help="Fake people per vendor.")] = 25,
    webhooks_to: Annotated[
        str | None, typer.Option(help="Deliver signed webhooks to <URL>/<vendor>, e.g. http://127.0.0.1:8088/webhooks")
    ] = None,
) -> None:
    """Serve emulators of BambooHR, Workday, ADP, SAP SuccessFactors, Lever, Workable, Greenhouse and Ashby.

    Each answers on its documented paths with paging, auth, rate limits and errors. Admin paths:
    POST /<vendor>/_admin/hires, PATCH or DELETE /<vendor>/_admin/people/<id>, POST
    /workday/_admin/people/<id>/terminate, POST /<vendor>/_admin/faults (BambooHR:
    /bamboohr/_admin/employees...)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:  # bound before the config is printed: a port in use is one line, not a config then a traceback
        sock.bind(("127.0.0.1", port))
    except OSError as exc:
        sock.close()
        err.print(f"[red]error[/red] cannot serve the sandbox on 127.0.0.1:{port}: {exc.strerror} (try --port)")
        raise typer.Exit(2) from None
    app, states = sandbox_app(people)
    for name, state in states.items():
        state.webhook_url = f"{webhooks_to.rstrip('/')}/{name}" if webhooks_to else None
    typer.echo("# Sandbox emulators. A config for them (secrets are the sandbox's own):\n")
    typer.echo(sandbox_config(f"http://127.0.0.1:{port}", states))
    uvicorn.Server(uvicorn.Config(app, log_level="warning")).run(sockets=[sock])
