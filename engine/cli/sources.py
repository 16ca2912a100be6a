"""CLI about sources: `status`, `resume`, `sources dump|check`, and `sandbox` (every vendor emulator)."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Annotated, Any

import typer
import uvicorn
from rich.table import Table

from provisioner.engine.cli.common import ConfigOpt, _load, console, err
from provisioner.engine.contracts.protocols import SourceError
from provisioner.engine.contracts.records import Failure
from provisioner.engine.sandbox.vendors import sandbox_app, sandbox_config
from provisioner.engine.store import Store
from provisioner.sources import build_source

sources_app = typer.Typer(
    help="Look at what the configured sources yield, without changing state.", no_args_is_help=True
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


def status(config: ConfigOpt, as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Sources (halted or not, last poll, last read), events not yet applied, scheduled changes, and
    per target the writes retrying and dead (exit 1 while anything is dead)."""
    cfg = _load(config)
    store = Store(cfg.store.url)
    states = store.sources.states()
    deferred = store.schedule.deferred()
    rows: list[dict[str, Any]] = []
    for s in cfg.sources:
        state, cursor = states.get(s.name), store.snapshots.cursor(s.name)
        rows.append(
            {
                "source": s.name,
                "halted": bool(state and state.halted),
                "reason": state.reason if state else None,
                "last_poll": state.last_poll_at if state else None,
                "workers": state.workers if state else 0,
                "last_read": cursor.get("mode"),
                "last_full_read": cursor.get("last_full_read"),
            }
        )
    summary = {
        "sources": rows,
        "unapplied_events": store.outbox.pending_count(),
        "scheduled": len(deferred),
        "next_scheduled": deferred[0].effective_at if deferred else None,
    }
    # -- failed writes (retrying / dead) per target: status exits 1 while anything is dead --
    by_target = failure_counts(store.failures.all())
    summary["failures"] = by_target
    dead = sum(t["dead"] for t in by_target.values())
    if as_json:
        print(json.dumps(summary, indent=2, default=str))
        if dead:
            raise typer.Exit(1)
        return
    table = Table(title="sources")
    for col in ("source", "state", "workers", "last poll (UTC)", "last read", "last full read (UTC)"):
        table.add_column(col)
    for r in rows:
        table.add_row(
            r["source"],
            f"[red]halted[/red]: {r['reason']}" if r["halted"] else "[green]running[/green]",
            str(r["workers"]),
            f"{r['last_poll']:%Y-%m-%d %H:%M}" if r["last_poll"] else "never",
            r["last_read"] or "-",
            (r["last_full_read"] or "-")[:16].replace("T", " "),
        )
    console.print(table)
    console.print(
        f"unapplied events: {summary['unapplied_events']} · scheduled changes: {len(deferred)}"
        + (f" (next {deferred[0].effective_at:%Y-%m-%d %H:%M} UTC)" if deferred else "")
    )
    if any(r["halted"] for r in rows):
        console.print("a halted source holds back deprovisioning; after checking it: provisioner resume SOURCE")
    for name, counts in by_target.items():
        console.print(
            f"target [bold]{name}[/bold]: {counts['retrying']} retrying, {counts['dead']} dead"
            + (f" · latest error: {counts['latest_error']}" if counts["latest_error"] else "")
        )
    if by_target:
        console.print(f"see them: provisioner failures -c {config}")
    if dead:
        raise typer.Exit(1)


def failure_counts(items: list[Failure]) -> dict[str, dict[str, Any]]:
    """Per target: how many writes are retrying, how many are dead, and the latest error."""
    out: dict[str, dict[str, Any]] = {}
    for f in sorted(items, key=lambda f: f.last_at):
        counts = out.setdefault(f.target, {"retrying": 0, "dead": 0, "latest_error": None})
        counts[f.state] += 1
        counts["latest_error"] = f.last_error
    return out


def resume(source: Annotated[str, typer.Argument(help="The halted source's name.")], config: ConfigOpt) -> None:
    """Lift a safety halt after a person looked: the next poll deprovisions what the source says."""
    cfg = _load(config)
    if source not in {s.name for s in cfg.sources}:
        err.print(f"[red]error[/red] no source {source!r} in {config}")
        raise typer.Exit(2)
    if Store(cfg.store.url).sources.resume(source):
        console.print(f"[green]resumed[/green] {source}: the next poll applies its deprovisions")
    else:
        console.print(f"{source} was not halted")


@sources_app.command()
def dump(
    name: Annotated[str, typer.Argument(help="The source's name in the config.")],
    config: ConfigOpt = Path("provisioner.yaml"),
) -> None:
    """Print one normalized Worker JSON per line, as the source yields them now (a full read).

    Quarantined records are reported on stderr. Nothing is stored."""
    [(_, source)] = _build(_load(config), name)

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
        err.print(f"[yellow]quarantined[/yellow] {bad.remote_id or '?'}: {bad.reason}")
    err.print(f"{len(result.workers)} workers, {len(result.quarantined)} quarantined")


@sources_app.command()
def check(config: ConfigOpt = Path("provisioner.yaml")) -> None:
    """Test each source's connectivity and credentials; exit 1 if any fails."""
    built = _build(_load(config))

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

    table = Table(title="sources")
    for column in ("source", "type", "result", "detail", "ms"):
        table.add_column(column)
    results = asyncio.run(probe_all())
    for (cfg, _), (ok, detail, ms) in zip(built, results, strict=True):
        table.add_row(cfg.name, cfg.type, "[green]ok[/green]" if ok else "[red]FAIL[/red]", detail, f"{ms:.0f}")
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
    """Serve emulators of BambooHR, Workday, Lever, Workable and Greenhouse to try the connectors.

    Each answers on its documented paths with paging, auth, rate limits and errors. Admin paths:
    POST /<vendor>/_admin/hires, PATCH or DELETE /<vendor>/_admin/people/<id>, POST
    /workday/_admin/people/<id>/terminate, POST /<vendor>/_admin/faults (BambooHR:
    /bamboohr/_admin/employees...)."""
    app, states = sandbox_app(people)
    for name, state in states.items():
        state.webhook_url = f"{webhooks_to.rstrip('/')}/{name}" if webhooks_to else None
    typer.echo("# Sandbox emulators. A config for them (secrets are the sandbox's own):\n")
    typer.echo(sandbox_config(f"http://127.0.0.1:{port}", states))
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")
