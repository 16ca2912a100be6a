"""What every CLI module shares: the consoles, the options every command spells the same way
(docs/cli.md), plurals, and loading a config or exiting."""

from __future__ import annotations

import inspect
import os
from collections.abc import Collection
from datetime import datetime
from pathlib import Path
from typing import NoReturn

import typer
from rich.console import Console
from sqlalchemy.exc import SQLAlchemyError

from provisioner.engine.cli.options import CONFIG_ENV, DEFAULT_CONFIG
from provisioner.engine.config import Config, ConfigError, load_config
from provisioner.engine.config.loader import Problem
from provisioner.engine.config.units import moment_or_age
from provisioner.engine.runtime.usecases.writeback import writeback_target
from provisioner.engine.runtime.wiring import Parts
from provisioner.engine.store import Store
from provisioner.engine.store.probe import store_problem
from provisioner.sources import settings_paths, settings_problems
from provisioner.targets import settings_problems as target_problems

console = Console()
err = Console(stderr=True)


def since_time(value: str | None) -> datetime | None:
    """`--since`: an ISO time (UTC unless it says otherwise) or an age such as 2h; exit 2 otherwise."""
    if value is None:
        return None
    try:
        return moment_or_age(value)
    except ValueError as exc:
        err.print(f"[red]error[/red] --since {exc}")
        raise typer.Exit(2) from None


def known_targets(cfg: Config, targets: list[str] | None) -> list[str] | None:
    """The `--target` values, or exit 2 naming those the config does not have."""
    # A writeback is named like a target wherever one is (log, failures): docs/writeback.md.
    names = [t.name for t in cfg.targets] + sorted({writeback_target(w.source) for w in cfg.writeback})
    unknown = sorted(set(targets or []) - set(names))
    if unknown:
        err.print(f"[red]error[/red] unknown target {', '.join(unknown)} (known: {', '.join(names) or 'none'})")
        raise typer.Exit(2)
    return targets or None


def _warn(problem: Problem) -> None:
    err.print(f"[yellow]warning[/yellow] {problem}", soft_wrap=True)


def _load(path: Path, *, secrets: bool | Collection[str] = True) -> Config:
    """The config or exit 2 with every problem. `secrets=False` for commands that only read the
    engine's state: unset ${VARS} of sources and targets are then no error; `secrets=("sources",)`
    for a command that talks to the sources alone."""
    if path == DEFAULT_CONFIG and not path.exists() and CONFIG_ENV not in os.environ:
        err.print(f"[red]error[/red] no {path} here: give one with -c FILE (or set {CONFIG_ENV})")
        raise typer.Exit(2)
    try:
        return load_config(
            path,
            settings_problems,
            target_check=target_problems,
            path_keys=settings_paths,
            secrets=secrets,
            warn=_warn,
        )
    except ConfigError as exc:
        for problem in exc.problems:
            err.print(f"[red]error[/red] {problem}", soft_wrap=True)
        raise typer.Exit(2) from None


def _parts_or_exit(config: Config) -> Parts:
    """The wired parts of a config, or one clear line and exit 2 (a policy that does not compile, a
    store that cannot be opened)."""
    try:
        return Parts(config)
    except ValueError as exc:
        err.print(f"[red]error[/red] {exc}")
        raise typer.Exit(2) from None
    except SQLAlchemyError:
        _unopened(config)


def _store_or_exit(config: Config) -> Store:
    """The config's store, or one clear line and exit 2 (a store that cannot be opened), as
    `_parts_or_exit` says it for the commands that wire the engine."""
    try:
        return Store(config.store.url)
    except SQLAlchemyError:
        _unopened(config)


def _unopened(config: Config) -> NoReturn:
    err.print(f"[red]error[/red] {store_problem(config.store.url) or 'the store cannot be opened'}")
    raise typer.Exit(2) from None


def reflow(text: str | None) -> str | None:
    """A docstring as help that the terminal re-wraps: each paragraph one line, paragraphs kept."""
    if not text:
        return text
    return "\n\n".join(" ".join(p.split()) for p in inspect.cleandoc(text).split("\n\n"))
