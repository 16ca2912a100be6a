"""`provisioner sync --worker ID`: provision one person now and show each step as it happens."""

from __future__ import annotations

import asyncio
from typing import Any

import typer
from rich.table import Table

from provisioner.engine.cli.common import console, err
from provisioner.engine.cli.safe import shown
from provisioner.engine.config import Config
from provisioner.engine.contracts.models import Worker
from provisioner.engine.contracts.protocols import SourceError


def _show(step: str, value: Any) -> None:
    if step == "source":
        if value is None:
            console.print("[bold]1. source[/bold]: the source has no such person")
            return
        assert isinstance(value, Worker)
        fields = value.model_dump(mode="json", exclude_none=True, exclude={"custom"})
        console.print("[bold]1. source[/bold]: " + ", ".join(f"{k}={shown(v)}" for k, v in fields.items()))
    elif step == "plan":
        table = Table(title="2. plan")
        for column in ("target", "action", "reason"):
            table.add_column(column)
        for action in value:
            when = f" (at {action.effective_at:%Y-%m-%d %H:%M %Z})" if action.effective_at else ""
            table.add_row(action.target, action.action.value + when, shown(action.reason))
        console.print(table if value else "[bold]2. plan[/bold]: nothing to do")
    elif step == "result":
        entry, account_id = value
        colour = {"success": "green", "failure": "red"}.get(entry.result, "yellow")
        outcome = f"[{colour}]{entry.result}[/{colour}]"
        account = f", account {shown(account_id)}" if account_id else ""
        error = f" — {shown(entry.error)}" if entry.error else ""
        console.print(f"[bold]3. request[/bold] {entry.target} {entry.action}: {outcome}{account}{error}")
    else:
        console.print(f"[yellow]{value}[/yellow]")


async def _run(cfg: Config, worker_id: str) -> bool:
    from provisioner.engine.runtime.ondemand import provision_one
    from provisioner.engine.runtime.wiring import Parts

    parts = Parts(cfg)
    try:
        done = await provision_one(parts, worker_id, _show)
    except (ValueError, SourceError) as exc:
        err.print(f"[red]error[/red] {exc}")
        raise typer.Exit(2) from None
    finally:
        await parts.aclose()
    return not done.failed


def sync_worker(cfg: Config, worker_id: str) -> None:
    """Exit 1 when a request failed."""
    if not asyncio.run(_run(cfg, worker_id)):
        raise typer.Exit(1)
