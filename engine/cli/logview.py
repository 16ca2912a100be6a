"""`provisioner log`: what was done to whom, why, with what result; the API's filters."""

from __future__ import annotations

import json
from enum import StrEnum
from typing import Annotated

import typer
from rich.table import Table

from provisioner.engine.cli.common import _load, _store_or_exit, console, known_targets, since_time
from provisioner.engine.cli.options import DEFAULT_CONFIG, ConfigOpt, JsonOpt, LimitOpt, SinceOpt, TargetsOpt, WorkerOpt
from provisioner.engine.cli.safe import shown
from provisioner.engine.contracts.records import RESULT_TONE
from provisioner.engine.kit.words import plural

COLOUR = {"ok": "green", "bad": "red", "warn": "yellow"}


class Result(StrEnum):
    """The results RESULT_TONE knows (tests/test_cli_log.py keeps the two the same)."""

    success = "success"
    failure = "failure"
    retrying = "retrying"
    dead = "dead"
    skipped = "skipped"


def styled(result: str) -> str:
    style = COLOUR.get(RESULT_TONE.get(result, ""))
    return f"[{style}]{result}[/{style}]" if style else result


def show_log(
    config: ConfigOpt = DEFAULT_CONFIG,
    worker: WorkerOpt = None,
    target: TargetsOpt = None,
    result: Annotated[Result | None, typer.Option("--result", help="Only entries with this result.")] = None,
    since: SinceOpt = None,
    limit: LimitOpt = 50,
    as_json: JsonOpt = False,
) -> None:
    """The provisioning log, newest last: what was done to whom, why, and with what result."""
    cfg = _load(config, secrets=False)
    targets = known_targets(cfg, target)
    store = _store_or_exit(cfg)
    when = since_time(since)
    value = result.value if result else None
    entries = store.search.log(worker, targets, value, when, limit)
    if as_json:
        print(json.dumps([e.model_dump(mode="json") for e in entries], indent=2, default=str))
        return
    table = Table(title="provisioning log")
    for col in ("time (UTC)", "worker", "target", "action", "result", "reason / error"):
        table.add_column(col)
    for e in entries:
        table.add_row(
            e.time.strftime("%Y-%m-%d %H:%M:%S"),
            shown(e.worker_id),
            e.target or "",
            e.action,
            styled(e.result),
            shown(e.error or e.reason),
        )
    console.print(table)
    total = store.search.log_count(worker, targets, value, when) if len(entries) == limit else len(entries)
    if total > len(entries):
        console.print(f"showing the newest {len(entries)} of {plural(total, 'entry')} — use --limit {total} for all")
    elif not entries:
        console.print("no entries" + (" match these filters" if worker or targets or value or when else " yet"))
