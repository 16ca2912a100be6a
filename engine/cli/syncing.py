"""`provisioner sync`: poll every source once, apply everything, exit; with progress as it goes."""

from __future__ import annotations

import asyncio
import json
from typing import Annotated, Any

import typer
from rich.table import Table

from provisioner.engine.cli.common import _load, _parts_or_exit, _store_or_exit, console, err
from provisioner.engine.cli.failures import access_kept, apply_due_retries, unsettled
from provisioner.engine.cli.logs import LogFormat, LogFormatOpt, setup
from provisioner.engine.cli.ondemand import sync_worker
from provisioner.engine.cli.options import DEFAULT_CONFIG, ConfigOpt, JsonOpt, VerboseOpt
from provisioner.engine.cli.progress import Meter, applying
from provisioner.engine.cli.safe import shown
from provisioner.engine.config import Config
from provisioner.engine.contracts.protocols import SourceError
from provisioner.engine.kit.paging import page_read
from provisioner.engine.kit.words import plural
from provisioner.engine.runtime.app import Runtime
from provisioner.engine.runtime.kafka_clients import KafkaSettingsError
from provisioner.engine.runtime.poller import Diff


def sync(
    config: ConfigOpt = DEFAULT_CONFIG,
    worker: Annotated[
        str | None, typer.Option("--worker", metavar="ID", help="Provision only this worker, now, step by step.")
    ] = None,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for everything to be applied.")] = 1800,
    as_json: JsonOpt = False,
    verbose: VerboseOpt = False,
    log_format: LogFormatOpt = LogFormat.auto,
    once: Annotated[
        bool, typer.Option("--once", hidden=True, help="Accepted for older scripts: sync always runs once.")
    ] = True,
) -> None:
    """Poll each source once, apply every change and every due retry, then exit (`provisioner run` is the
    long-running form). Exit 1 while anything is retrying or dead (provisioner failures lists it),
    someone keeps access they should not, or a source could not be read; 3 if a source is halted."""
    del once  # sync always runs once; the flag stays accepted so that `sync --once` scripts keep working
    setup(verbose, log_format)
    cfg = _load(config)
    if worker is not None:
        return sync_worker(cfg, worker)
    try:
        report, halted, failing = asyncio.run(_sync(cfg, timeout))
    except KafkaSettingsError as exc:  # a TLS file that cannot be read, a topic that is missing
        err.print(f"[red]error[/red] {exc}")
        raise typer.Exit(2) from None
    except TimeoutError as exc:  # slow app: what is left stays in the outbox for the next run
        err.print(f"[red]not everything is applied[/red]: {exc}; the next sync or run applies the rest (--timeout)")
        raise typer.Exit(1) from None
    counts = sorted((*key.split(":"), count) for key, count in report.actions.items())
    if as_json:
        rows = [{"action": action, "result": result, "count": count} for action, result, count in counts]
        failed = [{"worker": e.subject, "event": e.type.value, "error": error} for e, error in report.failures]
        print(json.dumps({"actions": rows, "failures": failed, "halted": halted, "unreadable": failing}, indent=2))
    elif not counts and failing:  # not "nothing to change": nobody knows what the unread source holds
        console.print(f"sync: nothing changed in any app; not read: {', '.join(failing)} (see above)")
    elif not counts:  # an empty table says less than a line
        console.print("sync: nothing to change in any app")
    else:
        table = Table(title="sync")
        for column in ("action", "result", "count"):
            table.add_column(column, justify="right" if column == "count" else "left")
        for action, result, count in counts:
            table.add_row(action, result, str(count))
        console.print(table)
    for event, error in report.failures:
        err.print(f"[red]failed[/red] {shown(event.subject)} ({event.type.value}): {shown(error)}")
    store = _store_or_exit(cfg)
    if waiting := len(store.approvals.list("pending")):  # exit 0 stands: the rest is as planned
        err.print(f"{plural(waiting, 'grant')} wait for a person's approval (provisioner approvals list)")
    kept = access_kept(store)  # said before the count of failures, and whether or not any exist
    if unsettled(store, str(config)) or kept or failing:
        raise typer.Exit(1)
    if halted:
        raise typer.Exit(3)  # a safety halt needs a person: make cron and CI notice


async def _sync(cfg: Config, timeout: float) -> Any:
    async with Runtime(cfg, parts=_parts_or_exit(cfg), one_shot=True) as runtime:
        events = await runtime.fire_due()
        halted: list[str] = []
        failing: list[str] = []
        for name in runtime.parts.sources:
            try:
                changes, halt = _reported(name, await _poll(runtime, name))
            except SourceError as exc:  # that source's poll failed; the others still flow
                err.print(f"[red]error[/red] {exc}")
                failing.append(name)
                continue
            events += changes
            halted += [name] if halt else []
        await applying(err, runtime, timeout, at_least=events)
        await apply_due_retries(runtime, timeout)
        return runtime.totals, halted, failing


async def _poll(runtime: Runtime, name: str) -> Diff:
    """One source's poll, counting the pages and records an API source reads as they come."""
    pages = 0
    with Meter(err, f"reading {name}", "record") as meter:

        def heard(records: int) -> None:
            nonlocal pages
            pages += 1
            meter.what = f"reading {name}: page {pages}"
            meter.update(meter.done + records)

        token = page_read.set(heard)
        try:
            return await runtime.poll(name)
        finally:
            page_read.reset(token)


def _reported(name: str, result: Diff) -> tuple[int, bool]:
    """Say a halt; keep only the poll's counts, so that its events and workers (hundreds of megabytes
    for a first sync of 100,000 people) are freed while they are being applied. What the poll read is
    the poller's own log line: said once, not twice in two wordings."""
    if result.halted:
        err.print(
            f"[red]halted[/red] {name}: {result.halted}; {plural(len(result.held), 'deprovisioning change')} "
            f"held back. After checking the source: provisioner resume {name}"
        )
    return result.event_count, result.halted is not None
