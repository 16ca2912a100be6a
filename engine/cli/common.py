"""What every CLI module shares: the consoles, the --config option, loading a config or exiting."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from provisioner.engine.config import Config, ConfigError, load_config
from provisioner.engine.runtime.wiring import Parts
from provisioner.sources import settings_paths, settings_problems
from provisioner.targets import settings_problems as target_problems

console = Console()
err = Console(stderr=True)

ConfigOpt = Annotated[Path, typer.Option("--config", "-c", help="The YAML config file.")]


def _load(path: Path, *, secrets: bool = True) -> Config:
    """The config or exit 2 with every problem. `secrets=False` for commands that only read the
    engine's state: unset ${VARS} of sources and targets are then no error."""
    try:
        return load_config(
            path,
            settings_problems,
            target_check=target_problems,
            path_keys=settings_paths,
            secrets=secrets,
        )
    except ConfigError as exc:
        for problem in exc.problems:
            err.print(f"[red]error[/red] {problem}", soft_wrap=True)
        raise typer.Exit(2) from None


def _parts_or_exit(config: Config) -> Parts:
    """The wired parts of a config, or one clear line and exit 2 (a policy that does not compile)."""
    try:
        return Parts(config)
    except ValueError as exc:
        err.print(f"[red]error[/red] {exc}")
        raise typer.Exit(2) from None
