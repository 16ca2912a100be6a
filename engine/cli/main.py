"""`provisioner` — the command line (typer + rich)."""

from __future__ import annotations

import asyncio
import json
from importlib.metadata import version
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.table import Table

from provisioner.engine.cli.common import ConfigOpt, _load, _parts_or_exit, console, err
from provisioner.engine.cli.failures import access_kept, apply_due_retries, failures, retry, unsettled
from provisioner.engine.cli.logs import LogFormat, LogFormatOpt, setup
from provisioner.engine.cli.ondemand import sync_worker
from provisioner.engine.cli.quarantine import quarantine
from provisioner.engine.cli.reconcile import reconcile_command
from provisioner.engine.cli.safe import shown
from provisioner.engine.cli.sessions import sessions_app
from provisioner.engine.cli.sources import resume, sandbox, sources_app, status
from provisioner.engine.cli.targets import targets_app
from provisioner.engine.config import Config
from provisioner.engine.contracts.protocols import SourceError
from provisioner.engine.contracts.records import by_worker
from provisioner.engine.kit.process import collect_rarely
from provisioner.engine.runtime.app import Runtime
from provisioner.engine.runtime.kafka_clients import KafkaSettingsError
from provisioner.engine.runtime.policytools import config_schema, run_policy_tests
from provisioner.engine.runtime.policytools import explain as explain_worker
from provisioner.engine.runtime.poller import Diff, diff
from provisioner.engine.runtime.wiring import Parts
from provisioner.engine.sandbox.demo import run_demo
from provisioner.engine.store import Store
from provisioner.engine.store.probe import store_problem

app = typer.Typer(
    help="Event-driven provisioning: HR systems → Kafka → policies → SCIM apps.",
    no_args_is_help=True,
    add_completion=False,
)


def _version(value: bool) -> None:
    if value:
        console.print(f"provisioner {version('provisioner')}")
        raise typer.Exit()


@app.callback()
def main(
    show_version: Annotated[
        bool | None,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit."),
    ] = None,
) -> None:
    """Event-driven provisioning: HR systems → Kafka → policies → SCIM apps."""
    collect_rarely()


def _logging(verbose: bool, fmt: LogFormat = LogFormat.auto) -> None:
    setup(verbose, fmt)


@app.command()
def validate(config: ConfigOpt) -> None:
    """Check a config file: schema, env references, policy expressions; every problem at once."""
    cfg = _load(config)

    try:
        Parts(cfg, store=Store("sqlite://"))
    except ValueError as exc:
        err.print(f"[red]error[/red] {config}: {exc}")
        raise typer.Exit(2) from None
    if problem := store_problem(cfg.store.url):  # opened read-only: validate changes nothing
        err.print(f"[red]error[/red] {config}: {shown(problem)}")
        raise typer.Exit(2)
    console.print(
        f"[green]ok[/green] {config}: {len(cfg.sources)} sources, {len(cfg.targets)} targets, "
        f"{len(cfg.policies)} policies"
    )


@app.command()
def sync(
    config: ConfigOpt,
    once: Annotated[bool, typer.Option("--once", help="Poll every source once, apply everything, exit.")] = True,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for everything to be applied.")] = 1800,
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
    worker: Annotated[str | None, typer.Option(help="Provision only this worker, now, step by step.")] = None,
    log_format: LogFormatOpt = LogFormat.auto,
) -> None:
    """Poll each source once, apply every change and every due retry; exit 1 while anything is
    retrying or dead (provisioner failures lists it), anyone keeps access they should not, or a
    source could not be read; 3 if a source is halted."""
    _logging(verbose, log_format)
    cfg = _load(config)
    if worker is not None:
        return sync_worker(cfg, worker)
    try:
        report, halted, failing = asyncio.run(_sync(cfg, timeout))
    except KafkaSettingsError as exc:  # a TLS file that cannot be read, a topic that is missing
        err.print(f"[red]error[/red] {exc}")
        raise typer.Exit(2) from None
    table = Table(title="sync", show_lines=False)
    table.add_column("action")
    table.add_column("result")
    table.add_column("count", justify="right")
    for key, count in sorted(report.actions.items()):
        action, result = key.split(":")
        table.add_row(action, result, str(count))
    console.print(table)
    for event, error in report.failures:
        err.print(f"[red]failed[/red] {shown(event.subject)} ({event.type.value}): {shown(error)}")
    store = Store(cfg.store.url)
    kept = access_kept(store)  # said before the count of failures, and whether or not any exist
    if unsettled(store, str(config)) or kept or failing:
        raise typer.Exit(1)
    if halted:
        raise typer.Exit(3)  # a safety halt needs a person: make cron and CI notice


async def _sync(cfg: Config, timeout: float) -> Any:
    async with Runtime(cfg, parts=_parts_or_exit(cfg), one_shot=True) as runtime:
        events = runtime.fire_due()
        halted: list[str] = []
        failing: list[str] = []
        for name in runtime.parts.sources:
            try:
                changes, halt = _reported(name, await runtime.poll(name))
            except SourceError as exc:  # that source's poll failed; the others still flow
                err.print(f"[red]error[/red] {exc}")
                failing.append(name)
                continue
            events += changes
            halted += [name] if halt else []
        total = max(events, runtime.store.outbox.pending_count())
        with Progress(
            TextColumn("applying"), BarColumn(), MofNCompleteColumn(), console=err, transient=True
        ) as progress:
            task = progress.add_task("apply", total=total)
            await runtime.wait_idle(timeout, lambda pending: progress.update(task, completed=total - pending))
        await apply_due_retries(runtime, timeout)
        return runtime.totals, halted, failing


def _reported(name: str, result: Diff) -> tuple[int, bool]:
    """Print what a poll found; keep only its counts, so that its events and workers (hundreds of
    megabytes for a first sync of 100,000 people) are freed while they are being applied."""
    err.print(
        f"source [bold]{name}[/bold]: {result.seen} workers, {len(result.events)} changes, "
        f"{len(result.quarantined)} quarantined"
    )
    if result.halted:
        err.print(
            f"[red]halted[/red] {name}: {result.halted}; {len(result.held)} deprovisioning changes "
            f"held back. After checking the source: provisioner resume {name}"
        )
    return len(result.events), result.halted is not None


@app.command()
def run(
    config: ConfigOpt,
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
    log_format: LogFormatOpt = LogFormat.auto,
) -> None:
    """Long-running: pollers, outbox relay, consumer, and the HTTP server (console, API, metrics,
    webhooks) on engine.listen. Ctrl-C or SIGTERM stops."""
    _logging(verbose, log_format)
    # The HTTP server (FastAPI, uvicorn) is imported by the commands that serve, so that every
    # other command, `sync --once` above all, starts without it.
    from provisioner.engine.runtime.service import run_forever

    _serve(run_forever, _load(config))


@app.command()
def serve(
    config: ConfigOpt,
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
    log_format: LogFormatOpt = LogFormat.auto,
) -> None:
    """The console, API and metrics alone on engine.listen (no pollers, no consumer, no broker):
    a second replica over the same store, or a read-only deployment."""
    _logging(verbose, log_format)
    from provisioner.engine.runtime.replica import serve_forever  # see `run`

    _serve(serve_forever, _load(config))


def _serve(forever: Any, cfg: Config) -> None:
    try:
        asyncio.run(forever(cfg))
    except ValueError as exc:  # cannot listen where the config says, or a part of the config is wrong
        err.print(f"[red]error[/red] {exc}")
        raise typer.Exit(2) from None
    except KeyboardInterrupt:
        pass
    err.print("stopped")


@app.command()
def plan(
    config: ConfigOpt,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON array of Actions.")] = False,
    worker: Annotated[str | None, typer.Option(help="Only this worker id.")] = None,
) -> None:
    """The actions a sync would take now. Reads the sources; changes nothing."""
    _logging(False)
    cfg = _load(config)
    actions = asyncio.run(_plan(cfg, worker))
    if as_json:
        print(json.dumps([a.model_dump(mode="json") for a in actions], indent=2))
        return
    table = Table(title=f"plan: {len(actions)} actions")
    for col in ("target", "worker", "action", "when", "reason"):
        table.add_column(col)
    ordered = sorted(actions, key=lambda a: (a.target, a.worker_id))
    for i, a in enumerate(ordered):
        last_of_target = i + 1 == len(ordered) or ordered[i + 1].target != a.target
        table.add_row(
            a.target,
            shown(a.worker_id),
            a.action.value,
            a.effective_at.strftime("%Y-%m-%d %H:%M %Z") if a.effective_at else "now",
            shown(a.reason),
            end_section=last_of_target,
        )
    console.print(table)


async def _plan(cfg: Config, only: str | None) -> list[Any]:
    parts = _parts_or_exit(cfg)
    actions = []
    try:
        for name, source in parts.sources.items():
            try:
                read = await source.read(parts.store.snapshots.cursor(name))
            except SourceError as exc:
                err.print(f"[red]error[/red] {exc}")
                raise typer.Exit(1) from None
            events = [
                e
                for e in diff(name, read, parts.store.snapshots.of_source(name)).events
                if only is None or e.subject == only
            ]
            links = by_worker(parts.store.links.for_workers({e.subject for e in events}))
            for event in events:
                try:
                    actions += parts.planner.plan(event, links.get(event.subject, {}), None, parts.account_of)
                except ValueError as exc:  # a policy that cannot be evaluated for this person: one line
                    err.print(f"[red]error[/red] {exc}")
                    raise typer.Exit(1) from None
    finally:
        await parts.aclose()
    return actions


@app.command()
def explain(
    worker_id: Annotated[str, typer.Argument(help="A worker id, e.g. bamboohr:123.")],
    config: ConfigOpt,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Why this person has (or lacks) each account: every policy's condition and value, scope, link, log."""
    _logging(False)  # on this command's own stderr, as plan does
    parts = _parts_or_exit(_load(config, secrets=False))  # stored data and policies: no secrets needed
    try:
        report = explain_worker(parts, worker_id)
    except (LookupError, ValueError) as exc:  # unknown worker; a policy that cannot be evaluated for them
        err.print(f"[red]error[/red] {exc}")
        raise typer.Exit(1) from None
    if as_json:
        print(json.dumps(report, indent=2, default=str))
        return
    w = report["worker"]
    console.print(
        f"[bold]{shown(worker_id)}[/bold] {shown(w.get('first_name', ''))} {shown(w.get('last_name', ''))} · "
        f"{shown(w.get('status'))} · {shown(w.get('department') or '-')} · {shown(w.get('employment_type') or '-')}"
    )
    for name, t in report["targets"].items():
        mark = "[green]in scope[/green]" if t["in_scope"] else "[yellow]out of scope[/yellow]"
        console.print(f"\n[bold]{name}[/bold]: {mark} — {shown(t['why'])}")
        for p in t["policies"]:
            value = "[green]true[/green]" if p["value"] else "[dim]false[/dim]"
            console.print(f"  {p['effect']:5} {p['policy']}: {shown(p['when'])} → {value}")
        if t["groups"]:
            console.print(f"  groups: {shown(', '.join(t['groups']))}")
        account = t["account"]
        console.print(
            f"  account: {shown(account['id'])} ({'active' if account['active'] else 'disabled'})"
            if account
            else "  account: none linked"
        )
        if t["waiting_for_manager"]:
            console.print(
                f"  manager {shown(t['waiting_for_manager'])} has no account here yet: written once they have one"
            )
        for d in t["scheduled"]:
            console.print(f"  scheduled: {d['action']} at {d['effective_at']} UTC — {shown(d['reason'])}")
        for e in t["log"]:
            console.print(f"  log {e['time']:%Y-%m-%d %H:%M}: {e['action']} {e['result']} — {shown(e['reason'])}")


@app.command("test")
def test_policies(config: ConfigOpt) -> None:
    """Run the config's `tests:` block: expected scope and groups per target; exit 1 on a failure."""
    cfg = _load(config)
    outcomes = run_policy_tests(cfg, _parts_or_exit(cfg))
    for outcome in outcomes:
        console.print(f"{'[green]PASSED[/green]' if outcome.passed else '[red]FAILED[/red]'} {outcome.name}")
        for failure in outcome.failures:
            console.print(f"    {failure}")
    failed = sum(not o.passed for o in outcomes)
    colour = "red" if failed else "green"
    console.print(f"[{colour}]{len(outcomes) - failed} passed, {failed} failed[/{colour}]")
    if failed or not outcomes:
        if not outcomes:
            err.print("[yellow]no tests[/yellow]: add a `tests:` block to the config")
        raise typer.Exit(1)


@app.command()
def schema() -> None:
    """Print the config file's JSON Schema (point your editor's YAML support at it)."""
    print(json.dumps(config_schema(), indent=2))


@app.command("log")
def show_log(
    config: ConfigOpt = Path("provisioner.yaml"),
    worker: Annotated[str | None, typer.Option(help="Only this worker id.")] = None,
    limit: Annotated[int, typer.Option(help="How many entries, newest last.")] = 50,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """The provisioning log: what was done to whom, why, and with what result."""
    cfg = _load(config, secrets=False)
    entries = Store(cfg.store.url).log.recent(worker, limit)
    if as_json:
        print(json.dumps([e.model_dump(mode="json") for e in entries], indent=2, default=str))
        return
    table = Table(title="provisioning log")
    for col in ("time", "worker", "target", "action", "result", "reason / error"):
        table.add_column(col)
    for e in entries:
        style = {"failure": "red", "skipped": "yellow"}.get(e.result, "")
        table.add_row(
            e.time.strftime("%Y-%m-%d %H:%M:%S"),
            shown(e.worker_id),
            e.target or "",
            e.action,
            f"[{style}]{e.result}[/{style}]" if style else e.result,
            shown(e.error or e.reason),
        )
    console.print(table)


@app.command()
def demo(
    people: Annotated[int, typer.Option(help="How many employees the emulator starts with.")] = 50,
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
) -> None:
    """Everything embedded: BambooHR emulator → Kafka → policies → SCIM app, in five steps."""
    _logging(verbose)
    asyncio.run(run_demo(console, people))


app.add_typer(sources_app, name="sources")
app.add_typer(targets_app, name="targets")
app.add_typer(sessions_app, name="sessions")
app.command("reconcile")(reconcile_command)
for command in (status, resume, quarantine, sandbox, failures, retry):
    app.command()(command)
