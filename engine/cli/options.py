"""The options every command spells the same way (docs/cli.md; tests/test_cli_conventions.py
checks each command against them)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

DEFAULT_CONFIG = Path("provisioner.yaml")
CONFIG_ENV = "PROVISIONER_CONFIG"
JSON_HELP = "Print JSON instead of a table (for scripts)."

ConfigOpt = Annotated[
    Path,
    typer.Option(
        "--config",
        "-c",
        metavar="FILE",
        envvar=CONFIG_ENV,
        show_envvar=True,
        help="The YAML config file.",
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help=JSON_HELP)]
WorkerOpt = Annotated[str | None, typer.Option("--worker", metavar="ID", help="Only this worker id, e.g. hr:1001.")]
TargetsOpt = Annotated[
    list[str] | None, typer.Option("--target", metavar="NAME", help="Only this target (repeatable).")
]
VerboseOpt = Annotated[bool, typer.Option("--verbose", "-v", help="Debug logging, the broker's own lines too.")]
SinceOpt = Annotated[
    str | None,
    typer.Option(
        "--since",
        metavar="WHEN",
        help="Only entries from then on: an ISO time (2026-01-31T09:00) or an age (90m, 2h, 7d).",
    ),
]
LimitOpt = Annotated[int, typer.Option("--limit", min=1, metavar="N", help="At most this many rows, the newest.")]
