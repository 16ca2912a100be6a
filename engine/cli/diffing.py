"""`provisioner diff`: the access effect of replacing one config (`--base FILE`, `--base-ref REF`)
with the current one, for everyone the engine knows (the store, or a population file), with CI
gates and the config's `tests:` run against the new config in the same command."""

from __future__ import annotations

import json
import re
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import typer
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from provisioner.engine.cli.common import _load, console, err
from provisioner.engine.cli.diffview import markdown, print_report
from provisioner.engine.cli.options import DEFAULT_CONFIG, ConfigOpt, JsonOpt, TargetsOpt
from provisioner.engine.cli.safe import shown
from provisioner.engine.config import Config
from provisioner.engine.kit.words import plural
from provisioner.engine.runtime.config_diff import diff_configs, diff_json
from provisioner.engine.runtime.diff_report import DiffReport
from provisioner.engine.runtime.population import Population, from_store, read_file, referenced_fields
from provisioner.engine.store.probe import store_problem

_GATE = re.compile(r"^(?:(deprovisions|revocations|changes|people)\s*>\s*(\d+)|target:(.+))$")


@dataclass(frozen=True)
class Gate:
    text: str
    measure: str | None = None  # deprovisions, revocations, changes, people
    limit: int = 0
    target: str | None = None

    @classmethod
    def parse(cls, text: str) -> Gate:
        match = _GATE.match(text.strip())
        if not match:
            raise ValueError(
                f"--fail-on {text!r}: give deprovisions>N, revocations>N, changes>N, people>N or target:NAME"
            )
        measure, limit, target = match.groups()
        return cls(text.strip(), measure, int(limit or 0), target.strip() if target else None)

    def tripped(self, report: DiffReport) -> str | None:
        if self.target is not None:
            n = sum(c.target == self.target for c in report.changes)
            return f"{self.text}: {plural(n, 'change')} in {self.target}" if n else None
        value = {
            "deprovisions": report.deprovisions(),
            "revocations": report.revocations(),
            "changes": len(report.changes),
            "people": len(report.people()),
        }[str(self.measure)]
        return f"{self.text}: {value}" if value > self.limit else None


def config_at(ref: str, path: Path, workdir: Path) -> Path:
    """The config file as it was at `ref`, in the git repository that holds it, written to `workdir`
    under its own name; exit 2 with git's own line when that fails."""
    where = path.absolute().parent
    if ref.startswith("-"):  # git would read it as an option (`--output=FILE` writes a file)
        err.print(f"[red]error[/red] --base-ref {shown(ref)}: a git ref does not start with '-'")
        raise typer.Exit(2)
    try:
        shown_ = subprocess.run(
            ["git", "-C", str(where), "show", f"{ref}:./{path.name}"],
            capture_output=True,
            check=False,
            timeout=60,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        err.print(f"[red]error[/red] --base-ref {shown(ref)}: git could not run: {shown(exc)}")
        raise typer.Exit(2) from None
    if shown_.returncode != 0:
        reason = (shown_.stderr.decode(errors="replace").strip().splitlines() or ["git show failed"])[-1]
        err.print(f"[red]error[/red] --base-ref {shown(ref)}: {shown(reason)}")
        raise typer.Exit(2)
    out = workdir / path.name
    out.write_bytes(shown_.stdout)
    return out


def _population(cfg: Config, store: str | None, population: Path | None, configs: list[Config]) -> Population:
    if population is not None:
        try:
            found = read_file(population)
        except ValueError as exc:
            err.print(f"[red]error[/red] {shown(exc)}")
            raise typer.Exit(2) from None
        missing = sorted(referenced_fields(configs) - (found.fields or frozenset()))
        if found.fields is not None and missing:
            err.print(
                f"[yellow]warning[/yellow] {population} carries no {', '.join(missing)}: the policies read "
                "them, so they count as unknown for everyone (export with the new config too: --also FILE)"
            )
        return found
    return read_store(store or cfg.store.url, [s.name for s in cfg.sources])


def read_store(url: str, sources: list[str]) -> Population:
    """The store's people and accounts, or exit 2 with one line: never an empty SQLite file made
    where a store was expected, never a traceback from a store the engine never wrote."""
    problem = store_problem(url)
    parsed = make_url(url) if problem is None else None
    if parsed is not None and parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        if not Path(str(parsed.database)).exists():
            problem = f"no store at {parsed.database}: run a sync first, or give --store URL or --population FILE"
    if problem:
        err.print(f"[red]error[/red] {shown(problem)}")
        raise typer.Exit(2)
    try:
        return from_store(url, sources)
    except SQLAlchemyError as exc:
        reason = (str(getattr(exc, "orig", None) or exc).splitlines() or [type(exc).__name__])[0]
        err.print(f"[red]error[/red] cannot read the store: {shown(reason)} (has the engine run against it?)")
        raise typer.Exit(2) from None


def diff_command(
    config: ConfigOpt = DEFAULT_CONFIG,
    base: Annotated[Path | None, typer.Option("--base", metavar="FILE", help="The config before the change.")] = None,
    base_ref: Annotated[
        str | None,
        typer.Option("--base-ref", metavar="REF", help="The config before the change: the same file at this git ref."),
    ] = None,
    store: Annotated[
        str | None, typer.Option("--store", metavar="URL", help="Read people and accounts from this store (replica).")
    ] = None,
    population: Annotated[
        Path | None,
        typer.Option("--population", metavar="FILE", help="People and accounts from `population export`."),
    ] = None,
    target: TargetsOpt = None,
    fail_on: Annotated[
        list[str] | None,
        typer.Option(
            "--fail-on",
            metavar="GATE",
            help="Exit 1 when deprovisions>N, revocations>N, changes>N, people>N or target:NAME (repeatable).",
        ),
    ] = None,
    as_json: JsonOpt = False,
    as_markdown: Annotated[bool, typer.Option("--markdown", help="Print markdown for a pull-request comment.")] = False,
    skip_tests: Annotated[bool, typer.Option("--skip-tests", help="Do not run the config's tests: block.")] = False,
) -> None:
    """The access effect of replacing the base config with this one, for everyone the engine knows:
    accounts created, disabled, deleted, enabled, groups granted and revoked, attributes changed, per
    target, with the people and the policies responsible. Reads only; talks to no source or app.

    Exit 0: no gate tripped; 1: a --fail-on gate tripped, a test of the config failed, or the new
    config cannot be evaluated for someone; 2: bad input (config, ref, population, gate)."""
    if (base is None) == (base_ref is None):
        err.print("[red]error[/red] say what to compare with: --base FILE or --base-ref REF (one of them)")
        raise typer.Exit(2)
    if store is not None and population is not None:
        err.print("[red]error[/red] --store and --population both name the people: give one")
        raise typer.Exit(2)
    try:
        gates = [Gate.parse(g) for g in fail_on or []]
    except ValueError as exc:
        err.print(f"[red]error[/red] {shown(exc)}")
        raise typer.Exit(2) from None
    cfg = _load(config, secrets=False)  # policies and mappings only: no source or app is asked
    with tempfile.TemporaryDirectory(prefix="provisioner-base-") as tmp:
        # The folder names the ref, so that a problem in that config says where it came from.
        at = Path(tmp) / f"at-{re.sub(r'[^A-Za-z0-9._-]+', '-', str(base_ref))}"
        at.mkdir()
        base_file = base if base is not None else config_at(str(base_ref), config, at)
        before = _load(base_file, secrets=False)
    names = {t.name for t in cfg.targets} | {t.name for t in before.targets}
    unknown = sorted({g.target for g in gates if g.target} - names) + sorted(set(target or []) - names)
    if unknown:
        err.print(f"[red]error[/red] unknown target {', '.join(unknown)} (known: {', '.join(sorted(names))})")
        raise typer.Exit(2)
    people = _population(cfg, store, population, [cfg, before])
    try:
        report, found = diff_configs(before, cfg, people, target or None, tests=not skip_tests)
    except ValueError as exc:
        err.print(f"[red]error[/red] {shown(exc)}")
        raise typer.Exit(2) from None
    tripped = [t for g in gates if (t := g.tripped(report))]
    tripped += found
    if as_json:
        print(json.dumps(diff_json(report, tripped), indent=2, default=str))
    elif as_markdown:
        print(markdown(report, tripped), end="")
    else:
        print_report(console, report, tripped)
    if tripped:
        raise typer.Exit(1)
