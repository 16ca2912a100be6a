"""`provisioner targets check`: can each target be reached, are the credentials accepted, what does
it announce it can do, and can one user and one group be read?"""

from __future__ import annotations

import asyncio
from typing import Any

import typer
from rich.table import Table

from provisioner.engine.cli.common import ConfigOpt, _load, console
from provisioner.engine.config import Config
from provisioner.targets import build_target

targets_app = typer.Typer(help="Look at the configured targets (apps) without changing them.", no_args_is_help=True)


async def _check_one(target: Any) -> list[tuple[str, bool, str]]:
    if hasattr(target, "check"):
        return list(await target.check())
    try:  # a REST target: its listing is the smallest read it knows
        async for account in target.list_accounts():
            return [("reachable", True, ""), ("credentials", True, "accepted"), ("read one account", True, account.id)]
        return [("reachable", True, ""), ("credentials", True, "accepted"), ("read one account", True, "none yet")]
    except Exception as exc:  # whatever the app answered, it is this target's failure, not the command's
        return [("read one account", False, f"{type(exc).__name__}: {exc}")]


async def _check(cfg: Config, only: str | None) -> dict[str, list[tuple[str, bool, str]]]:
    out = {}
    for config in cfg.targets:
        if only and config.name != only:
            continue
        target = build_target(config)
        try:
            out[config.name] = await _check_one(target)
        finally:
            await target.aclose()
    return out


@targets_app.command("check")
def check(config: ConfigOpt, target: str | None = typer.Option(None, help="Only this target.")) -> None:
    """Reachable, credentials accepted, capabilities, one user and one group read; exit 1 on any failure."""
    cfg = _load(config)
    results = asyncio.run(_check(cfg, target))
    table = Table(title="targets check")
    for column in ("target", "check", "result", "detail"):
        table.add_column(column)
    for name, rows in results.items():
        for i, (what, passed, detail) in enumerate(rows):
            result = "[green]ok[/green]" if passed else "[red]failed[/red]"
            table.add_row(name if i == 0 else "", what, result, detail, end_section=i == len(rows) - 1)
    console.print(table)
    if any(not passed for rows in results.values() for _, passed, _ in rows):
        raise typer.Exit(1)
