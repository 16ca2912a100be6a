"""`python -m provisioner.engine.cli` — the same as the `provisioner` command."""

from provisioner.engine.cli import app

app(prog_name="provisioner")
