"""`provisioner` — the command line (typer + rich). Every command follows docs/cli.md."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from importlib.metadata import version
from typing import Annotated, Any

import typer

from provisioner.engine.cli.approvals import approvals_app
from provisioner.engine.cli.common import _load, _parts_or_exit, console, err, reflow
from provisioner.engine.cli.diffing import diff_command
from provisioner.engine.cli.failures import failures, retry
from provisioner.engine.cli.identity import identity_app
from provisioner.engine.cli.logs import LogFormat, LogFormatOpt, setup
from provisioner.engine.cli.logview import show_log
from provisioner.engine.cli.mcp import mcp_command
from provisioner.engine.cli.options import DEFAULT_CONFIG, ConfigOpt, VerboseOpt
from provisioner.engine.cli.planning import explain, plan
from provisioner.engine.cli.population import population_app
from provisioner.engine.cli.quarantine import quarantine
from provisioner.engine.cli.reconcile import reconcile_command
from provisioner.engine.cli.safe import shown
from provisioner.engine.cli.sessions import sessions_app
from provisioner.engine.cli.sources import resume, sandbox, sources_app, status
from provisioner.engine.cli.syncing import sync
from provisioner.engine.cli.targets import targets_app
from provisioner.engine.config import Config
from provisioner.engine.kit.process import collect_rarely
from provisioner.engine.kit.words import plural
from provisioner.engine.runtime.policytools import config_schema, run_policy_tests
from provisioner.engine.runtime.wiring import Parts
from provisioner.engine.sandbox.demo import run_demo
from provisioner.engine.store import Store
from provisioner.engine.store.probe import store_problem

# Plain click help: flags show no `<bool>` placeholder, and click re-wraps every paragraph to the
# terminal's width.
app = typer.Typer(
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode=None,
)


def _version(value: bool) -> None:
    if value:
        console.print(f"provisioner {version('provisioner')}")
        raise typer.Exit()


@app.callback()
def main(
    show_version: Annotated[
        bool | None,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit."),
    ] = None,
) -> None:
    """Event-driven provisioning: HR systems → Kafka → policies → SCIM apps.

    Every command reads its config from -c FILE, else $PROVISIONER_CONFIG, else ./provisioner.yaml."""
    collect_rarely()


def validate(config: ConfigOpt = DEFAULT_CONFIG) -> None:
    """Check a config file: schema, env references, policy expressions; every problem at once."""
    cfg = _load(config)
    try:
        Parts(cfg, store=Store("sqlite://"))
    except ValueError as exc:
        err.print(f"[red]error[/red] {config}: {exc}")
        raise typer.Exit(2) from None
    if problem := store_problem(cfg.store.url):  # opened read-only: validate changes nothing
        err.print(f"[red]error[/red] {config}: {shown(problem)}")
        raise typer.Exit(2)
    console.print(
        f"[green]ok[/green] {config}: {plural(len(cfg.sources), 'source')}, {plural(len(cfg.targets), 'target')}, "
        f"{plural(len(cfg.policies), 'policy')}"
    )


def run(
    config: ConfigOpt = DEFAULT_CONFIG, verbose: VerboseOpt = False, log_format: LogFormatOpt = LogFormat.auto
) -> None:
    """Long-running: pollers, outbox relay, consumer, and the HTTP server (console, API, metrics,
    webhooks) on engine.listen, until Ctrl-C or SIGTERM. `provisioner sync` is the one-shot form."""
    setup(verbose, log_format)
    # The HTTP server (FastAPI, uvicorn) is imported by the commands that serve, so that every
    # other command, `sync` above all, starts without it.
    from provisioner.engine.runtime.service import run_forever

    _serve(run_forever, _load(config))


def serve(
    config: ConfigOpt = DEFAULT_CONFIG, verbose: VerboseOpt = False, log_format: LogFormatOpt = LogFormat.auto
) -> None:
    """The console, API and metrics alone on engine.listen (no pollers, no consumer, no broker):
    a second replica over the same store, or a read-only deployment."""
    setup(verbose, log_format)
    from provisioner.engine.runtime.replica import serve_forever  # see `run`

    _serve(serve_forever, _load(config))


def _serve(forever: Any, cfg: Config) -> None:
    try:
        asyncio.run(forever(cfg))
    except ValueError as exc:  # cannot listen where the config says, or a part of the config is wrong
        err.print(f"[red]error[/red] {exc}")
        raise typer.Exit(2) from None
    except KeyboardInterrupt:
        pass
    err.print("stopped")


def test_policies(config: ConfigOpt = DEFAULT_CONFIG) -> None:
    """Run the config's `tests:` block: expected scope and groups per target; exit 1 on a failure."""
    cfg = _load(config)
    outcomes = run_policy_tests(cfg, _parts_or_exit(cfg))
    for outcome in outcomes:
        console.print(f"{'[green]PASSED[/green]' if outcome.passed else '[red]FAILED[/red]'} {outcome.name}")
        for failure in outcome.failures:
            console.print(f"    {failure}")
    failed = sum(not o.passed for o in outcomes)
    colour = "red" if failed else "green"
    console.print(f"[{colour}]{len(outcomes) - failed} passed, {failed} failed[/{colour}]")
    if failed or not outcomes:
        if not outcomes:
            err.print("[yellow]no tests[/yellow]: add a `tests:` block to the config")
        raise typer.Exit(1)


def schema() -> None:
    """Print the config file's JSON Schema (point your editor's YAML support at it)."""
    print(json.dumps(config_schema(), indent=2))


def demo(
    people: Annotated[int, typer.Option(help="How many employees the emulator starts with.")] = 50,
    verbose: VerboseOpt = False,
) -> None:
    """Everything embedded: BambooHR emulator → Kafka → policies → SCIM app, in five steps."""
    setup(verbose)
    asyncio.run(run_demo(console, people))


COMMANDS: dict[str, Callable[..., None]] = {
    "validate": validate,
    "plan": plan,
    "sync": sync,
    "run": run,
    "serve": serve,
    "log": show_log,
    "explain": explain,
    "diff": diff_command,
    "status": status,
    "failures": failures,
    "retry": retry,
    "reconcile": reconcile_command,
    "quarantine": quarantine,
    "resume": resume,
    "test": test_policies,
    "schema": schema,
    "demo": demo,
    "sandbox": sandbox,
    "mcp": mcp_command,
}
for name, command in COMMANDS.items():
    app.command(name, help=reflow(command.__doc__))(command)
for name, group in (
    ("sources", sources_app),
    ("targets", targets_app),
    ("sessions", sessions_app),
    ("population", population_app),
    ("approvals", approvals_app),
    ("identity", identity_app),
):
    for info in group.registered_commands:
        info.help = reflow(info.help or (info.callback.__doc__ if info.callback else None))
    app.add_typer(group, name=name)
