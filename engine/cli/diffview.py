"""How `provisioner diff` shows its answer: a rich table per section on a terminal, and markdown
sized for a pull-request comment (sections over 50 rows collapsed; under GitHub's 65,536-character
limit for a comment, with a note when rows had to be left out)."""

from __future__ import annotations

from collections.abc import Iterable
from itertools import groupby

from rich.console import Console
from rich.table import Table

from provisioner.engine.cli.safe import controls_escaped, shown
from provisioner.engine.kit.words import plural
from provisioner.engine.runtime.diff_report import Change, DiffReport

# GitHub refuses a comment body over 65,536 characters; the rest is headroom for a caller's header.
COMMENT_LIMIT = 60_000
COLLAPSE_OVER = 50
TERMINAL_ROWS = 50

TITLES = {
    "create": "accounts created",
    "enable": "accounts enabled",
    "disable": "accounts disabled",
    "delete": "accounts deleted",
    "add_groups": "groups granted",
    "remove_groups": "groups revoked",
    "update": "attributes changed",
}
ORDER = ["delete", "disable", "remove_groups", "create", "enable", "add_groups", "update"]


def title(section: str) -> str:
    """A known kind by its words; any other (a kind added later) as it is named."""
    kind, undone, _ = section.partition(" (no longer)")
    return TITLES.get(kind, kind) + (" (no longer)" if undone else "")


def _sections(changes: Iterable[Change]) -> list[tuple[str, str, list[Change]]]:
    """(target, section, rows): targets by name, known kinds in revocation-first order, then others."""

    def rank(c: Change) -> tuple[str, int, str, str, str]:
        known = ORDER.index(c.section) if c.section in ORDER else len(ORDER)
        return (c.target, known, c.section, c.worker_id, c.detail)

    ordered = sorted(changes, key=rank)
    return [(t, s, list(rows)) for (t, s), rows in groupby(ordered, key=lambda c: (c.target, c.section))]


def _kinds(counts: dict[str, dict[str, int]]) -> list[str]:
    found = {k for n in counts.values() for k in n}
    return sorted(found, key=lambda k: (k not in ORDER, ORDER.index(k) if k in ORDER else 0, k))


def _person(report: DiffReport, worker_id: str) -> str:
    name = report.names.get(worker_id)
    return f"{worker_id} ({name})" if name else worker_id


def headline(report: DiffReport) -> str:
    people = len(report.people())
    return (
        f"{plural(people, 'person', 'people')} affected of {report.population}: "
        f"{plural(len(report.changes), 'change')}, {plural(report.deprovisions(), 'deprovision')}"
    )


def print_report(console: Console, report: DiffReport, gates: list[str]) -> None:
    console.print(f"[bold]diff[/bold]: {headline(report)}")
    counts = report.counts()
    if counts:
        kinds = _kinds(counts)
        summary = Table(title="changes per target")
        summary.add_column("target")
        for kind in kinds:
            summary.add_column(title(kind), justify="right")
        for target, n in counts.items():
            summary.add_row(shown(target), *(str(n.get(k, "")) for k in kinds))
        console.print(summary)
    for target, section, rows in _sections(report.changes):
        table = Table(title=f"{target}: {title(section)} ({len(rows)})", title_justify="left")
        for col in ("person", "detail", "policy", "why"):
            table.add_column(col)
        for c in rows[:TERMINAL_ROWS]:
            table.add_row(
                shown(_person(report, c.worker_id)), shown(c.detail), shown(", ".join(c.policies)), shown(c.why)
            )
        console.print(table)
        if len(rows) > TERMINAL_ROWS:
            console.print(f"  … and {len(rows) - TERMINAL_ROWS} more (--json lists all)")
    for m in report.mappings:
        console.print(
            f"mapping {shown(m.target)} {shown(m.attribute)}: {shown(m.old or '(none)')} → {shown(m.new or '(none)')}"
            f" — {plural(m.people, 'person', 'people')} whose value changes"
        )
    for line in [*report.notes, *report.errors]:
        console.print(f"[yellow]note[/yellow] {shown(line)}")
    for gate in gates:
        console.print(f"[red]gate[/red] {shown(gate)}")


def _cell(text: str) -> str:
    """Data in a table cell: no column break, no HTML, no control characters."""
    safe = controls_escaped(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return safe.replace("|", "\\|").replace("`", "'")


def _data(text: str) -> str:
    """A value from HR or a template (a name, a group) in a cell, as a code span: GitHub renders
    no link, image, @mention or HTML inside one, which escaping markdown punctuation would not stop."""
    safe = controls_escaped(text).replace("`", "'").replace("|", "\\|")
    return f"`{safe}`" if safe.strip() else ""


def markdown(report: DiffReport, gates: list[str], heading: str = "Access changes") -> str:
    """The report as a PR comment; rows are cut, largest sections first, until it fits."""
    for cap in (None, 500, 200, 100, 50, 20, 10, 5, 0):
        text = _markdown(report, gates, heading, cap)
        if len(text) <= COMMENT_LIMIT:
            return text
    return text[: COMMENT_LIMIT - 200] + "\n\n… cut to fit a comment; run `provisioner diff --json` for everything.\n"


def _markdown(report: DiffReport, gates: list[str], heading: str, cap: int | None) -> str:
    lines = [f"### {heading}", "", f"**{headline(report)}**", ""]
    for gate in gates:
        lines.append(f"> :x: gate tripped: {_cell(gate)}")
    if gates:
        lines.append("")
    counts = report.counts()
    if not counts:
        lines += ["No access changes.", ""]
    else:
        kinds = _kinds(counts)
        lines += ["| target | " + " | ".join(title(k) for k in kinds) + " |", "|---" * (len(kinds) + 1) + "|"]
        lines += [f"| {_cell(t)} | " + " | ".join(str(n.get(k, "")) for k in kinds) + " |" for t, n in counts.items()]
        lines.append("")
    left_out = 0
    for target, section, rows in _sections(report.changes):
        shown_rows = rows if cap is None else rows[:cap]
        left_out += len(rows) - len(shown_rows)
        summary = f"{target}: {title(section)} ({len(rows)})"
        body = ["| person | detail | policy |", "|---|---|---|"]
        body += [
            f"| {_data(_person(report, c.worker_id))} | {_data(c.detail)} | {_cell(', '.join(c.policies))} |"
            for c in shown_rows
        ]
        if len(shown_rows) < len(rows):
            body.append(f"\n… {len(rows) - len(shown_rows)} more left out to fit a comment")
        if len(rows) > COLLAPSE_OVER:
            lines += [f"<details><summary>{summary}</summary>", "", *body, "", "</details>", ""]
        else:
            lines += [f"**{summary}**", "", *body, ""]
    if report.mappings:
        lines += ["| mapping | attribute | before | after | people |", "|---|---|---|---|---|"]
        lines += [
            f"| {_cell(m.target)} | {_data(m.attribute)} | {_data(m.old or '')} | {_data(m.new or '')} | {m.people} |"
            for m in report.mappings
        ]
        lines.append("")
    lines += [f"- {_cell(n)}" for n in [*report.notes, *report.errors]]
    if left_out:
        lines.append(f"\n_{left_out} rows left out to fit a comment: `provisioner diff --json` lists all._")
    return "\n".join(lines).rstrip() + "\n"
