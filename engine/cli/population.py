"""`provisioner population export`: the people and accounts the engine knows, as a file that
`provisioner diff --population` reads in CI, where the store is out of reach. Only the Worker fields
the policies read; ids pseudonymous (keyed HMAC) and no names or emails unless --with-names."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from provisioner.engine.cli.common import _load, err
from provisioner.engine.cli.diffing import read_store
from provisioner.engine.cli.options import DEFAULT_CONFIG, ConfigOpt
from provisioner.engine.cli.safe import shown
from provisioner.engine.kit.words import plural
from provisioner.engine.runtime.population import export, referenced_fields

population_app = typer.Typer(
    help="The people the engine knows, as a file `diff` can read (pseudonymous unless asked).",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode=None,
)
KEY_ENV = "PROVISIONER_POPULATION_KEY"


@population_app.command("export")
def export_command(
    config: ConfigOpt = DEFAULT_CONFIG,
    output: Annotated[Path, typer.Option("--output", "-o", metavar="FILE", help="Write the file here.")] = Path(
        "population.json"
    ),
    also: Annotated[
        list[Path] | None,
        typer.Option("--also", metavar="FILE", help="Carry the fields this config reads too (repeatable)."),
    ] = None,
    with_names: Annotated[
        bool, typer.Option("--with-names", help="Keep real ids, names and emails (not for a public CI).")
    ] = False,
    key_env: Annotated[
        str,
        typer.Option(
            "--key-env",
            metavar="VAR",
            help="The environment variable holding the pseudonym key; unset: a random key for this export.",
        ),
    ] = KEY_ENV,
    store: Annotated[
        str | None, typer.Option("--store", metavar="URL", help="Read from this store (replica) instead.")
    ] = None,
) -> None:
    """Write everyone the engine knows (stored snapshots and links) to a population file for
    `provisioner diff --population`. Reads the store only."""
    cfg = _load(config, secrets=False)
    configs = [cfg, *(_load(path, secrets=False) for path in also or [])]
    people = read_store(store or cfg.store.url, [s.name for s in cfg.sources])
    data = export(people, referenced_fields(configs), with_names=with_names, key_env=key_env)
    try:
        output.write_text(json.dumps(data, separators=(",", ":")))
    except OSError as exc:
        err.print(f"[red]error[/red] {output}: cannot write: {shown(exc.strerror)}")
        raise typer.Exit(2) from None
    kind = "pseudonymous" if data["pseudonymous"] else "with names"
    err.print(
        f"wrote {output}: {plural(len(data['workers']), 'person', 'people')}, "
        f"{plural(len(data['links']), 'account')} ({kind}; fields: {', '.join(data['fields'])})"
    )
