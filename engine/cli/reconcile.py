"""`provisioner reconcile`: what should exist vs what does, by situation, and the fixes."""

from __future__ import annotations

import asyncio
import json
from contextlib import ExitStack
from pathlib import Path
from typing import Annotated, Any

import typer

from provisioner.engine.cli.common import _load, _parts_or_exit, _store_or_exit, console, err, known_targets
from provisioner.engine.cli.logs import LogFormat, setup
from provisioner.engine.cli.options import DEFAULT_CONFIG, ConfigOpt, JsonOpt, TargetsOpt
from provisioner.engine.cli.progress import Meter, applying
from provisioner.engine.config import Config
from provisioner.engine.kit.words import plural
from provisioner.engine.runtime.app import Runtime
from provisioner.engine.runtime.views import record_reconcile
from provisioner.reconcile.report import as_html, print_report
from provisioner.reconcile.report import as_json as report_json
from provisioner.reconcile.run import apply_fixes, reconcile


def reconcile_command(
    config: ConfigOpt = DEFAULT_CONFIG,
    target: TargetsOpt = None,
    fix: Annotated[bool, typer.Option("--fix", help="Heal drift, missing, unlinked; merge duplicate groups.")] = False,
    as_json: JsonOpt = False,
    html: Annotated[Path | None, typer.Option(help="Also write a self-contained HTML report here.")] = None,
) -> None:
    """What should exist vs what does, by situation; exit 0 if nothing needs attention, 2 if drift
    remains, a target's listing could not be trusted, or a group was too large to compare."""
    setup(False, LogFormat.auto)
    cfg = _load(config)
    target = known_targets(cfg, target)
    result, notes = asyncio.run(_reconcile(cfg, target, fix))
    if not target:  # a whole reconciliation is the one the console and the metrics show
        record_reconcile(_store_or_exit(cfg), report_json(result))
    for note in notes:
        err.print(f"[yellow]note[/yellow] {note}")
    if html:
        html.write_text(as_html(result))
        err.print(f"report written to {html}")
    if as_json:
        print(json.dumps(report_json(result), indent=2))
    else:
        print_report(console, result, "after --fix" if fix else "reconciliation")
    if not result.settled():
        raise typer.Exit(2)


async def _reconcile(cfg: Config, targets: list[str] | None, fix: bool) -> tuple[Any, list[str]]:
    parts = _parts_or_exit(cfg)
    with ExitStack() as meters:
        listing: dict[str, Meter] = {}

        def listed(name: str, count: int) -> None:
            if name not in listing:
                listing[name] = meters.enter_context(Meter(err, f"listing {name}", "account"))
            listing[name].update(count)

        result = await reconcile(parts, targets, listed)
        if not fix:
            await parts.aclose()
            return result, []
        events, notes = await apply_fixes(parts, result)
        err.print(f"fixing: {plural(events, 'worker')} re-planned through the engine")
        async with Runtime(cfg, parts=parts) as runtime:
            await applying(err, runtime, 600)
            return await reconcile(parts, targets, listed), notes
