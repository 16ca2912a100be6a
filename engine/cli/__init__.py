"""`provisioner` — the command line (typer + rich)."""

from provisioner.engine.cli.main import app

__all__ = ["app"]
