"""Reconciliation speed: list a target of N accounts and classify them against N workers.

    python bench/reconcile.py [--accounts 20000] [--app scim2-server|light] [--latency 0.1]
                              [--page-size N] [--max-results N] [--concurrency 8] [--compare]

The accounts are loaded into a fresh app (not timed): scim2-server through /Bulk, or `light`
(bench/light_scim.py behind a front that answers `--latency` s late, as a SaaS app does). The
snapshots and links are written straight into a SQLite store, a tenth of the accounts changed
behind the engine's back. Prints the time split into target listing and classification; with
`--compare`, the listing with pages one after another (concurrency 1, as before pages were
fetched together) first, and the ratio. Pages are as large as the app announces (the target's
default) unless `--page-size` asks for fewer; `--max-results` makes scim2-server announce that
filter.maxResults instead of its own 1,000.

scim2-server answers one request at a time; for every page it sorts all the users it holds (~0.5 s
at 100,000) and it spends about a millisecond of its own CPU per user it sends (pydantic copies and
dumps), so its listing is bound by the server whatever the client does: 100,000 users cost it
~190 s of CPU in pages of 1,000, ~115 s in pages of 10,000 on the 2-core machine. The figure printed
as `app CPU` says how much of the listing was the app's.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, cast

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from latency_app import latency_app

from provisioner.engine.config import Config
from provisioner.engine.contracts.events import change_event
from provisioner.engine.contracts.models import Worker
from provisioner.engine.contracts.records import Link, utcnow
from provisioner.engine.kit.servers import scim_server_process
from provisioner.engine.runtime.wiring import Parts
from provisioner.reconcile.run import reconcile
from provisioner.targets.mapping import build_resource
from provisioner.targets.scim import ScimTarget
from provisioner.targets.scim_listing import page_size
from provisioner.targets.scim_support import USER_SCHEMA


def bench_workers(n: int) -> list[Worker]:
    return [
        Worker(
            id=f"hr:{i}",
            source="hr",
            remote_id=str(i),
            first_name=f"F{i}",
            last_name=f"L{i}",
            work_email=f"u{i}@bench.example",
            title="Drifted" if i % 10 == 0 else "Engineer",
            department=f"D{i % 7}",
            employment_type="full_time",
            status="active",
        )
        for i in range(n)
    ]


async def post_accounts(url: str, resources: list[dict[str, Any]], bulk: bool) -> list[str]:
    """The accounts into the app, not timed: /Bulk where the app has it, else many POSTs at once
    (marked as the bench's own, so the front neither delays nor counts them)."""
    async with httpx.AsyncClient(base_url=url, timeout=120, headers={"X-Bench": "read"}) as client:
        if bulk:
            ids: list[str] = []
            for start in range(0, len(resources), 1000):
                ops = [
                    {"method": "POST", "path": "/Users", "bulkId": str(i), "data": r}
                    for i, r in enumerate(resources[start : start + 1000])
                ]
                message = {"schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"], "Operations": ops}
                answer = (await client.post("/Bulk", json=message)).json()
                ids += [op["location"].rsplit("/", 1)[-1] for op in answer["Operations"]]
            return ids
        gate = asyncio.Semaphore(32)

        async def post(resource: dict[str, Any]) -> str:
            async with gate:
                return str((await client.post("/Users", json=resource)).raise_for_status().json()["id"])

        return list(await asyncio.gather(*(post(r) for r in resources)))


async def load(url: str, parts: Parts, n: int, bulk: bool) -> None:
    spec = parts.planner.targets["app"]
    workers = bench_workers(n)
    resources = [{**build_resource(spec.render(w), USER_SCHEMA), "active": True} for w in workers]
    ids = await post_accounts(url, resources, bulk)
    # the snapshot says Engineer for everyone: every tenth account has drifted
    workers = [w.model_copy(update={"title": "Engineer"}) for w in workers]
    with parts.store.unit() as s:
        parts.store.snapshots.upsert(s, "hr", workers)
        parts.store.outbox.enqueue(s, [change_event("hr", None, None, w) for w in workers[:1]])
    links = [
        Link(
            worker_id=w.id,
            target="app",
            account_id=i,
            active=True,
            attributes=spec.render(w),
            groups=[],
            updated_at=utcnow(),
        )
        for w, i in zip(workers, ids, strict=True)
    ]
    parts.store.links.reconcile(links, [], [])


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def config(folder: Path, url: str, size: int | None, concurrency: int) -> Config:
    target = {"name": "app", "type": "scim", "base_url": url, "page_size": size, "concurrency": concurrency}
    return Config.model_validate(
        {
            "store": {"url": f"sqlite:///{folder / 'bench.db'}"},
            "sources": [{"name": "hr", "type": "file", "path": str(folder / "none.csv")}],
            "targets": [{**target, "adaptive_concurrency": False}],
            "policies": [{"name": "all", "when": "true", "grant": [{"target": "app"}]}],
        }
    )


@contextmanager
def the_app(kind: str, latency: float, max_results: int | None, folder: Path) -> Iterator[tuple[str, int]]:
    """(url, pid of the process whose CPU is the app's)."""
    if kind == "light":
        with latency_app(latency, light=True) as app:
            yield app.url, app.pid
        return
    announced = None
    if max_results:
        from scim2_server.utils import load_default_service_provider_config

        spc = load_default_service_provider_config()
        assert spc.filter is not None
        spc.filter.max_results = max_results
        announced = folder / "service-provider-config.json"
        announced.write_text(spc.model_dump_json(by_alias=True, exclude_none=True))
    with scim_server_process(str(announced) if announced else None) as url:
        port = int(url.rsplit(":", 1)[1])
        yield url, next(pid for pid in _children() if f"--port {port}" in _cmdline(pid))


def _children() -> list[int]:
    me = str(os.getpid())
    return [int(p) for p in os.listdir("/proc") if p.isdigit() and _ppid(p) == me]


def _ppid(pid: str) -> str | None:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1]
    except OSError:
        return None


def _cmdline(pid: int) -> str:
    return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--accounts", type=int, default=20000)
    parser.add_argument("--app", choices=["scim2-server", "light"], default="scim2-server")
    parser.add_argument("--latency", type=float, default=0.1, help="the light app's answer delay (s)")
    parser.add_argument("--page-size", type=int, default=None, help="default: as many as the app announces")
    parser.add_argument("--max-results", type=int, default=None, help="scim2-server announces this maxResults")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--compare", action="store_true", help="first list with pages one after another")
    args = parser.parse_args()
    with (
        tempfile.TemporaryDirectory() as tmp,
        the_app(args.app, args.latency, args.max_results, Path(tmp)) as (
            url,
            pid,
        ),
    ):
        folder = Path(tmp)
        await load(url, Parts(config(folder, url, args.page_size, 1)), args.accounts, bulk=args.app != "light")
        runs = [1, args.concurrency] if args.compare else [args.concurrency]
        listed: dict[int, float] = {}
        for concurrency in runs:
            parts = Parts(config(folder, url, args.page_size, concurrency))
            app_cpu = cpu_seconds(pid)
            start = time.perf_counter()
            result = await reconcile(parts)
            total = time.perf_counter() - start
            app_cpu = cpu_seconds(pid) - app_cpu
            client = cast(ScimTarget, parts.targets["app"]).client
            asked = page_size(client, await client.discover())
            await parts.aclose()
            listed[concurrency] = result.listing_s
            summary = result.summary()["app"]
            print(f"pages of {asked} from {args.app}, {concurrency} at once")
            print(f"accounts:         {result.accounts}  situations: {summary}")
            rate = result.accounts / result.listing_s
            print(f"target listing:   {result.listing_s:7.2f} s  ({rate:,.0f} accounts/s; app CPU {app_cpu:.1f} s)")
            print(
                f"classification:   {result.classify_s:7.2f} s  ({result.accounts / result.classify_s:,.0f} accounts/s)"
            )
            print(f"total:            {total:7.2f} s")
        if args.compare:
            ratio = listed[1] / listed[args.concurrency]
            print(f"listing speed-up: {ratio:.2f}x ({args.concurrency} pages at once vs one after another)")


if __name__ == "__main__":
    asyncio.run(main())
