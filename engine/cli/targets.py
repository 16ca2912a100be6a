"""`provisioner targets check`: can each target be reached, are the credentials accepted (proven by
an authenticated read), what does it announce it can do, can one user and one group be read, and
what has been learned about it (kept in the store; `--relearn` forgets it)?"""

from __future__ import annotations

import asyncio
import json
from functools import partial
from typing import Annotated

import typer
from rich.table import Table

from provisioner.engine.cli.common import _load, _store_or_exit, console, known_targets
from provisioner.engine.cli.options import DEFAULT_CONFIG, ConfigOpt, JsonOpt, TargetsOpt
from provisioner.engine.cli.safe import shown
from provisioner.engine.config import Config
from provisioner.engine.contracts.profile import Learner
from provisioner.engine.contracts.protocols import ChecksItself, ListsAccounts, Target
from provisioner.targets import build_target

targets_app = typer.Typer(
    help="Look at the configured targets (apps) without changing them.", no_args_is_help=True, rich_markup_mode=None
)


async def _check_one(target: Target) -> list[tuple[str, bool, str]]:
    if isinstance(target, ChecksItself):
        return list(await target.check())
    if not isinstance(target, ListsAccounts):
        return [("read one account", False, "this writer has no way to read the app without changing it")]
    try:  # a REST target: its listing is the smallest authenticated read it knows
        async for account in target.list_accounts():
            return [("reachable", True, ""), ("credentials", True, "accepted"), ("read one account", True, account.id)]
        return [("reachable", True, ""), ("credentials", True, "accepted"), ("read one account", True, "none yet")]
    except Exception as exc:  # whatever the app answered, it is this target's failure, not the command's
        status = getattr(getattr(exc, "response", None), "status_code", getattr(exc, "status", None))
        if status in (401, 403):
            return [("reachable", True, f"HTTP {status}"), ("credentials", False, "credentials refused")]
        return [("read one account", False, f"{type(exc).__name__}: {exc}")]


async def _check(cfg: Config, only: list[str] | None, relearn: bool) -> dict[str, list[tuple[str, bool, str]]]:
    out = {}
    store = _store_or_exit(cfg)
    try:
        for config in cfg.targets:
            if only and config.name not in only:
                continue
            target = build_target(config)
            if isinstance(target, Learner):
                if relearn:
                    store.profiles.forget(config.name)
                target.use_profile(store.profiles.get(config.name), partial(store.profiles.save, config.name))
            try:
                out[config.name] = await _check_one(target)
            finally:
                await target.aclose()
    finally:
        store.close()
    return out


@targets_app.command("check")
def check(
    config: ConfigOpt = DEFAULT_CONFIG,
    target: TargetsOpt = None,
    relearn: Annotated[
        bool, typer.Option("--relearn", help="Forget what was learned about the app; learn it again.")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Reachable, credentials proven, capabilities, one user and one group read, what was learned
    about the app; exit 1 on any failure."""
    cfg = _load(config)
    results = asyncio.run(_check(cfg, known_targets(cfg, target), relearn))
    failed = any(not passed for rows in results.values() for _, passed, _ in rows)
    if as_json:
        out = {name: [{"check": c, "ok": ok, "detail": d} for c, ok, d in rows] for name, rows in results.items()}
        print(json.dumps(out, indent=2))
        if failed:
            raise typer.Exit(1)
        return
    table = Table(title="targets check")
    for column in ("target", "check", "result", "detail"):
        table.add_column(column)
    for name, rows in results.items():
        for i, (what, passed, detail) in enumerate(rows):
            result = "[green]ok[/green]" if passed else "[red]failed[/red]"
            table.add_row(name if i == 0 else "", what, result, shown(detail), end_section=i == len(rows) - 1)
    console.print(table)
    if failed:
        raise typer.Exit(1)
