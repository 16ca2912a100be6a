"""What every CLI module shares: the consoles, the --config option, loading a config or exiting."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from provisioner.engine.config import Config, ConfigError, load_config
from provisioner.sources import settings_problems

console = Console()
err = Console(stderr=True)

ConfigOpt = Annotated[Path, typer.Option("--config", "-c", help="The YAML config file.")]


def _load(path: Path) -> Config:
    try:
        return load_config(path, settings_problems)
    except ConfigError as exc:
        for problem in exc.problems:
            err.print(f"[red]error[/red] {problem}")
        raise typer.Exit(2) from None
