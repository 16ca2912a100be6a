"""Reconciliation speed: list a target of N accounts and classify them against N workers.

    python bench/reconcile.py [--accounts 20000]

The accounts are loaded into a fresh scim2-server through /Bulk (not timed), the snapshots and links
written straight into a SQLite store, a tenth of the accounts changed behind the engine's back.
Prints the time split into target listing and classification.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from provisioner.engine.config import Config
from provisioner.engine.contracts.events import change_event
from provisioner.engine.contracts.models import Worker
from provisioner.engine.contracts.records import Link, utcnow
from provisioner.engine.kit.servers import scim_server_process
from provisioner.engine.runtime.wiring import Parts
from provisioner.reconcile.run import reconcile
from provisioner.targets.mapping import build_resource
from provisioner.targets.scim_support import USER_SCHEMA


async def load(url: str, parts: Parts, n: int) -> None:
    spec = parts.planner.targets["app"]
    workers = [
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
    resources = [{**build_resource(spec.render(w), USER_SCHEMA), "active": True} for w in workers]
    ids: list[str] = []
    async with httpx.AsyncClient(base_url=url, timeout=120) as client:
        for start in range(0, n, 1000):
            ops = [
                {"method": "POST", "path": "/Users", "bulkId": str(i), "data": r}
                for i, r in enumerate(resources[start : start + 1000])
            ]
            answer = (
                await client.post(
                    "/Bulk", json={"schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"], "Operations": ops}
                )
            ).json()
            ids += [op["location"].rsplit("/", 1)[-1] for op in answer["Operations"]]
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


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--accounts", type=int, default=20000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, scim_server_process() as url:
        config = Config.model_validate(
            {
                "store": {"url": f"sqlite:///{Path(tmp) / 'bench.db'}"},
                "sources": [{"name": "hr", "type": "file", "path": str(Path(tmp) / "none.csv")}],
                "targets": [{"name": "app", "type": "scim", "base_url": url, "page_size": 1000}],
                "policies": [{"name": "all", "when": "true", "grant": [{"target": "app"}]}],
            }
        )
        parts = Parts(config)
        await load(url, parts, args.accounts)
        start = time.perf_counter()
        result = await reconcile(parts)
        total = time.perf_counter() - start
        await parts.aclose()
    summary = result.summary()["app"]
    print(f"accounts:         {result.accounts}  situations: {summary}")
    print(f"target listing:   {result.listing_s:7.2f} s  ({result.accounts / result.listing_s:,.0f} accounts/s)")
    print(f"classification:   {result.classify_s:7.2f} s  ({result.accounts / result.classify_s:,.0f} accounts/s)")
    print(f"total:            {total:7.2f} s")


if __name__ == "__main__":
    asyncio.run(main())
