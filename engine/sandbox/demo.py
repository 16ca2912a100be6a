"""`provisioner demo`: a BambooHR emulator, a SCIM app, the embedded broker and the engine, in five steps."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.table import Table

from provisioner.engine.config import Config
from provisioner.engine.kit.servers import scim_app, serve_asgi, serve_wsgi
from provisioner.engine.kit.words import plural
from provisioner.engine.runtime.app import Runtime
from provisioner.sources.bamboohr.emulator import EmulatorState, create_app

DEMO_POLICIES = [
    {
        "name": "all-staff",
        "when": "worker.employment_type in ['full_time', 'part_time']",
        "grant": [{"target": "scim-app", "groups": ["all-staff", "dept-{{ worker.department | slug }}"]}],
    },
    {
        "name": "contractors",
        "when": "worker.employment_type == 'contractor'",
        "grant": [{"target": "scim-app", "groups": ["contractors"]}],
    },
]


def demo_config(bamboo_url: str, api_key: str, scim_url: str, db: Path) -> Config:
    return Config.model_validate(
        {
            "store": {"url": f"sqlite:///{db}"},
            "sources": [
                {
                    "name": "bamboohr",
                    "type": "bamboohr",
                    "base_url": f"{bamboo_url}/api/gateway.php/acme",
                    "api_key": api_key,
                    "poll_interval": "1m",
                }
            ],
            "targets": [{"name": "scim-app", "type": "scim", "base_url": scim_url, "on_terminate": "disable"}],
            "policies": DEMO_POLICIES,
        }
    )


async def run_demo(console: Console, people: int = 50) -> None:
    started = time.monotonic()
    state = EmulatorState()
    state.seed(people)
    with tempfile.TemporaryDirectory() as tmp, serve_asgi(create_app(state)) as bamboo, serve_wsgi(scim_app()) as scim:
        console.print(
            f"[bold]BambooHR emulator[/bold] {bamboo.url} ({people} employees) · "
            f"[bold]SCIM app[/bold] {scim.url} (scim2-server)"
        )
        config = demo_config(bamboo.url, state.api_key, scim.url, Path(tmp) / "demo.db")
        async with (
            Runtime(config) as runtime,
            httpx.AsyncClient(base_url=bamboo.url) as admin,
            httpx.AsyncClient(base_url=scim.url) as app,
        ):

            async def step(title: str, change: Any = None) -> None:
                if change is not None:
                    await change
                log_start = max((e.id or 0 for e in runtime.store.log.recent(limit=1)), default=0)
                await runtime.poll("bamboohr")
                await runtime.wait_idle(timeout=60)
                entries = [e for e in runtime.store.log.recent(limit=10_000) if (e.id or 0) > log_start]
                await _show(console, title, entries, app)

            await step("1. initial sync")
            hired = (
                await admin.post(
                    "/_admin/employees",
                    json={
                        "first_name": "Zoë",
                        "last_name": "Okafor",
                        "department": "Engineering",
                        "job_title": "Platform Engineer",
                    },
                )
            ).json()
            await step(f"2. hire: {hired['displayName']}")
            mover = next(
                e
                for e in state.employees.values()
                if e["department"] == "Sales" and e["employmentHistoryStatus"] == "Full-Time"
            )
            await step(
                f"3. department move: {mover['displayName']} Sales → Marketing",
                admin.patch(f"/_admin/employees/{mover['id']}", json={"department": "Marketing"}),
            )
            await step(
                f"4. termination: {hired['displayName']}",
                admin.post(f"/_admin/employees/{hired['id']}/terminate", json={}),
            )
            await step(
                f"5. rehire: {hired['displayName']}", admin.post(f"/_admin/employees/{hired['id']}/rehire", json={})
            )
            users = (await app.get("/Users", params={"count": 0})).json()["totalResults"]
            groups = (await app.get("/Groups", params={"count": 0})).json()["totalResults"]
    console.print(
        f"\n[green]Done[/green] in {time.monotonic() - started:.1f}s: "
        f"{plural(users, 'user')} and {plural(groups, 'group')} "
        "in the SCIM app, every change went HR → Kafka → policy → SCIM."
    )
    console.print(
        "Next: write your own config (see examples/file-to-scim.yaml), check it with "
        "[bold]provisioner validate -c FILE[/bold], preview with [bold]provisioner plan -c FILE[/bold], "
        "apply with [bold]provisioner sync -c FILE[/bold]."
    )


async def _show(console: Console, title: str, entries: list[Any], app: httpx.AsyncClient) -> None:
    table = Table(title=title, title_justify="left", show_lines=False)
    for col in ("worker", "action", "result", "what changed in the SCIM app"):
        table.add_column(col)
    shown = entries if len(entries) <= 8 else entries[:6]
    for e in shown:
        table.add_row(e.worker_id, e.action, e.result, _describe(e.attributes))
    if len(entries) > len(shown):
        table.add_row("…", f"{len(entries) - len(shown)} more", "", "")
    if not entries:
        table.add_row("-", "noop", "", "nothing to do")
    console.print(table)
    if len(entries) <= 8:
        for e in {e.worker_id for e in entries}:
            found = (await app.get("/Users", params={"filter": f'externalId eq "{e}"'})).json()
            for user in found.get("Resources", []):
                dept = user.get("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User", {}).get("department")
                console.print(
                    f"   SCIM user [bold]{user['userName']}[/bold] active={user.get('active')} "
                    f"title={user.get('title')!r} department={dept!r}"
                )


def _describe(attributes: dict[str, Any]) -> str:
    short = {k.rsplit(":", 1)[-1]: v for k, v in attributes.items()}
    text = ", ".join(f"{k}={v}" for k, v in short.items())
    return text if len(text) < 90 else text[:87] + "…"
