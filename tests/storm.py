"""A fault storm: `sync --once` of many workers through tests/faultproxy.py in front of a real
scim2-server, then `sync --once` again until it says everything is applied.

Used by tests/test_storm.py (a few hundred workers, in the suite) and bench/storm.py (1,000, the
figures of the closing note). Every sync's exit code is checked against the store as it runs: 1
exactly while something is retrying or dead."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from typer.testing import CliRunner

from provisioner.engine.cli.main import app
from provisioner.engine.kit.servers import scim_app, serve_asgi, serve_wsgi
from provisioner.engine.store import Store
from tests.faultproxy import FaultProxy, fault_proxy

ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"


@dataclass
class Figures:
    workers: int
    requests_seen: int = 0
    requests_faulted: int = 0
    faults_by_kind: dict[str, int] = field(default_factory=dict)
    retries_scheduled: int = 0  # failed writes given a durable retry (one log row per attempt)
    dead_letters: int = 0  # failed writes dead-lettered (none should be: the storm ends)
    items_healed_by_retry: int = 0
    adopted_after_conflict: int = 0  # a create whose response was lost, found on the server and adopted
    syncs: list[int] = field(default_factory=list)  # exit codes, in order
    seconds_to_converge: float = 0.0
    accounts: int = 0
    problems: list[str] = field(default_factory=list)  # what is not exactly right at the end

    def as_json(self) -> str:
        return json.dumps(asdict(self), indent=2)


def person(i: int) -> dict[str, Any]:
    return {
        "remote_id": str(i),
        "first_name": f"First{i}",
        "last_name": f"Last{i}",
        "work_email": f"user{i}@example.com",
        "title": f"Title {i % 7}",
        "department": "Engineering" if i % 2 else "Sales",
        "employment_type": "full_time",
        "status": "active",
    }


def storm(workers: int, tmp: Path, *, share: float = 0.3, window: float = 3.0, seed: int = 7) -> Figures:
    figures = Figures(workers)
    people = tmp / "people.json"
    people.write_text(json.dumps([person(i) for i in range(workers)]))
    store_url = f"sqlite:///{tmp / 'storm.db'}"
    proxy = fault_proxy("http://placeholder", share=share, seed=seed, retry_after=1)
    with serve_wsgi(scim_app()) as scim, serve_asgi(proxy) as front:
        proxy.upstream = httpx.URL(scim.url)
        config = _config(tmp / "storm.yaml", store_url, people, front.url)
        store = Store(store_url)
        started = time.monotonic()
        opener = threading.Thread(target=_open_at_first_request, args=(proxy, window), daemon=True)
        opener.start()
        for _ in range(12):
            code = _sync(config, store, figures)
            if code == 0:
                break
            _wait_until_due(store, deadline=time.monotonic() + 60)
        figures.seconds_to_converge = round(time.monotonic() - started, 1)
        stats = proxy.stats
        figures.requests_seen, figures.requests_faulted = stats["seen"], stats["faulted"]
        figures.faults_by_kind = {k: stats[k] for k in ("503", "429", "500", "forward_500")}
        retries = [e for e in store.log.recent(limit=100_000) if e.action == "retry"]
        figures.retries_scheduled = sum(e.result == "retrying" for e in retries)
        figures.dead_letters = sum(e.result == "dead" for e in retries)
        figures.items_healed_by_retry = sum(e.result == "success" for e in retries)
        figures.adopted_after_conflict = sum(e.action == "adopt" for e in store.log.recent(limit=100_000))
        figures.problems = _check(scim.url, store, workers)
        figures.accounts = len(list_resources(scim.url, "Users"))
        store.close()
    return figures


def _open_at_first_request(proxy: FaultProxy, window: float) -> None:
    """The window is timed from the engine's first request: its start-up (broker, consumer group)
    would otherwise eat a short window."""
    deadline = time.monotonic() + 60
    while proxy.stats["seen"] == 0 and time.monotonic() < deadline:
        time.sleep(0.005)
    proxy.open_window(window)


def _config(path: Path, store_url: str, people: Path, url: str) -> Path:
    path.write_text(
        json.dumps(
            {
                "store": {"url": store_url},
                "engine": {"concurrency": 32},
                "sources": [{"name": "hr", "type": "file", "path": str(people)}],
                "targets": [
                    # small /Bulk requests: more of them, so the storm hits whole batches often
                    {"name": "app", "type": "scim", "base_url": url, "max_attempts": 2, "bulk_max_operations": 10}
                ],
                "policies": [
                    {"name": "everyone", "when": "true", "grant": [{"target": "app", "groups": ["staff"]}]},
                    {
                        "name": "engineering",
                        "when": "worker.department == 'Engineering'",
                        "grant": [{"target": "app", "groups": ["eng"]}],
                    },
                ],
                "retry": {"attempts": 8, "initial": "0.2s", "max": "2s"},
                "safety": {"max_deprovisions": None, "max_deprovision_ratio": None},
            }
        )
    )
    return path


def _sync(config: Path, store: Store, figures: Figures) -> int:
    result = CliRunner().invoke(app, ["sync", "-c", str(config)])
    figures.syncs.append(result.exit_code)
    remaining = store.failures.all()
    truthful = result.exit_code == (1 if remaining else 0)
    if not truthful or (remaining and "provisioner failures" not in result.output):
        figures.problems.append(f"sync exited {result.exit_code} with {len(remaining)} failures left")
    return result.exit_code


def _wait_until_due(store: Store, deadline: float) -> None:
    """Until the next retry is due (not a fixed sleep: the store says when)."""
    while (due := store.failures.next_due()) is not None and time.monotonic() < deadline:
        wait = (due - datetime.now(UTC)).total_seconds()
        if wait <= 0:
            return
        time.sleep(min(wait, 0.5))


def list_resources(url: str, resource: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    with httpx.Client(base_url=url, timeout=30) as client:
        while True:
            page = client.get(f"/{resource}", params={"startIndex": len(out) + 1, "count": 500}).json()
            items = page.get("Resources") or []
            out += items
            if not items or len(out) >= int(page.get("totalResults") or 0):
                return out


def _check(url: str, store: Store, workers: int) -> list[str]:
    """Every account, attribute, group membership and link exactly right; no duplicate."""
    problems: list[str] = []
    users = list_resources(url, "Users")
    by_external: dict[str, dict[str, Any]] = {}
    for user in users:
        if user.get("externalId") in by_external:
            problems.append(f"duplicate account for {user.get('externalId')}")
        by_external[str(user.get("externalId"))] = user
    if len(users) != workers:
        problems.append(f"{len(users)} accounts for {workers} workers")
    links = {link.worker_id: link for link in store.links.all("app")}
    groups = {g["displayName"]: {m["value"] for m in g.get("members") or []} for g in list_resources(url, "Groups")}
    for i in range(workers):
        p, wid = person(i), f"hr:{i}"
        user = by_external.get(wid)
        if user is None:
            problems.append(f"{wid} has no account")
            continue
        expected = {
            "userName": p["work_email"],
            "name": {"givenName": p["first_name"], "familyName": p["last_name"]},
            "title": p["title"],
            "active": True,
        }
        got = {k: user.get(k) for k in expected}
        if got != expected or (user.get(ENTERPRISE) or {}).get("department") != p["department"]:
            problems.append(f"{wid} attributes differ: {got}")
        wanted = {"staff", "eng"} if i % 2 else {"staff"}
        member_of = {name for name, members in groups.items() if user["id"] in members}
        if member_of != wanted:
            problems.append(f"{wid} is in {sorted(member_of)}, should be in {sorted(wanted)}")
        link = links.get(wid)
        if link is None or link.account_id != user["id"] or set(link.groups) != wanted or not link.active:
            problems.append(f"{wid} link is {link}")
    if store.failures.all():
        problems.append(f"{len(store.failures.all())} failures left")
    return problems
