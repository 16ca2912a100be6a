"""The reconciliation report: a rich summary for the terminal, JSON, and a self-contained HTML page."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from jinja2 import Environment
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from provisioner.reconcile.classify import Situation
from provisioner.reconcile.run import Reconciliation

WHY = {
    Situation.confirmed: "linked, and the app matches the desired state",
    Situation.drifted: "linked, but attributes, groups or the active flag differ from the desired state",
    Situation.missing: "the person should have an account and has none (or it was deleted)",
    Situation.unlinked: "an account matches the person by externalId, userName or email, but no link is stored",
    Situation.should_be_disabled: "the person is out of scope or has left, and the account is still active",
    Situation.deprovisioned: "the person has left and the account is disabled (or deleted), as configured",
    Situation.orphaned: "the account matches nobody the sources know",
    Situation.ambiguous: "several accounts match one person, or one account several people",
}

UNREAD = "members of groups answering more than max_response_bytes (raise it to compare them)"

HTML = """<!doctype html><html><head><meta charset="utf-8"><title>Reconciliation {{ when }}</title>
<style>body{font:14px system-ui,sans-serif;margin:2em;color:#222}table{border-collapse:collapse;margin:1em 0}
td,th{border:1px solid #ccc;padding:4px 8px;text-align:left}th{background:#f4f4f4}
.ok{color:#1a7f37}.bad{color:#b42318}</style></head><body>
<h1>Reconciliation report</h1><p>{{ when }} · {{ accounts }} accounts listed ·
<span class="{{ 'bad' if attention else 'ok' }}">{{ attention }} need attention</span></p>
<h2>Counts</h2><table><tr><th>target</th>{% for s in situations %}<th>{{ s }}</th>{% endfor %}</tr>
{% for target, counts in summary.items() %}<tr><td>{{ target }}</td>{% for s in situations %}
<td>{{ counts.get(s, 0) }}</td>{% endfor %}</tr>{% endfor %}</table>
{% if not_kept %}<h2>Not kept by this app</h2><p>Written, but the app answered without them; never counted as drift.</p>
<table>{% for target, names in not_kept.items() %}<tr><td>{{ target }}</td><td>{{ names | join(', ') }}</td></tr>
{% endfor %}</table>{% endif %}
{% for target, why in unlisted.items() %}<p class="bad">Not reconciled: {{ target }}: {{ why }}</p>{% endfor %}
{% for target, names in unread_groups.items() %}<p class="bad">Not compared: {{ target }}: {{ unread_why }}:
{{ names | join(', ') }}</p>{% endfor %}
<h2>What needs attention</h2>{% if not items %}<p class="ok">Nothing: every account is as it should be.</p>{% else %}
<table><tr><th>situation</th><th>target</th><th>person</th><th>account</th><th>why</th><th>details</th></tr>
{% for i in items %}<tr><td class="bad">{{ i.situation }}</td><td>{{ i.target }}</td><td>{{ i.worker_id or '' }}</td>
<td>{% if i.user_name %}{{ i.user_name }} ({{ i.account_id }}){% else %}{{ i.account_id or '' }}{% endif %}</td>
<td>{{ why[i.situation] }}</td><td>{{ i.details | join('; ') }}</td></tr>
{% endfor %}</table>{% endif %}</body></html>"""


def as_json(result: Reconciliation) -> dict[str, Any]:
    return {
        "summary": result.summary(),
        "items": [i.as_dict() for i in result.needing_attention()],
        "not_kept": result.not_kept,
        "duplicate_groups": [d.as_dict() for d in result.duplicate_groups],
        "unlisted": result.unlisted,
        "unread_groups": result.unread_groups,
    }


def as_html(result: Reconciliation) -> str:
    template = Environment(autoescape=True).from_string(HTML)  # names come from HR data: escape them
    items = [{**i.as_dict(), "situation": i.situation} for i in result.needing_attention()]
    return template.render(
        when=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        accounts=result.accounts,
        attention=len(items),
        summary=result.summary(),
        items=items,
        situations=[s.value for s in Situation],
        why=WHY,
        not_kept=result.not_kept,
        unlisted=result.unlisted,
        unread_groups=result.unread_groups,
        unread_why=UNREAD,
    )


def print_report(console: Console, result: Reconciliation, title: str = "reconciliation") -> None:
    # One row per situation, one column per target: eight situations do not fit across a terminal.
    summary = result.summary()
    table = Table(title=title)
    table.add_column("situation")
    for target in summary:
        table.add_column(target, justify="right")
    for situation in Situation:
        table.add_row(situation.value, *[str(counts.get(situation.value, 0) or "") for counts in summary.values()])
    console.print(table)
    for target, why in result.unlisted.items():
        console.print(f"[red]not reconciled[/red] {target}: {escape(why)}")
    for target, names in result.unread_groups.items():
        console.print(f"[red]not compared[/red] {target}: {UNREAD}: {escape(', '.join(names))}")
    for target, names in result.not_kept.items():
        console.print(f"[dim]{target}: not kept by this app (not counted as drift): {', '.join(names)}[/dim]")
    for duplicate in result.duplicate_groups:
        console.print(
            f"[yellow]duplicate groups[/yellow] {duplicate.target} {duplicate.name!r}: "
            f"{len(duplicate.groups)} groups ({', '.join(g.id for g in duplicate.groups)}); --fix merges them"
        )
    for item in result.needing_attention():
        account = f"{item.user_name} ({item.account_id})" if item.user_name else item.account_id or "-"
        console.print(
            f"[yellow]{item.situation.value}[/yellow] {item.target} {item.worker_id or '-'} "
            f"{escape(account)}: {escape('; '.join(item.details))}"
        )
