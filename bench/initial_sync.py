"""Initial sync throughput: the engine end to end vs a raw httpx loop, each into a fresh scim2-server.

    python bench/initial_sync.py --workers 2000 [--concurrency 8] [--repeat 3] [--no-bulk]

Both sides run at the same concurrency against their own fresh `scim2-server` process. The engine is
timed from the poll to the last event confirmed as applied (the broker and consumer group are up
before the clock starts, as in a long-running engine). The two sides alternate `--repeat` times and
the best run of each is compared, as `timeit` does: on a shared 2-core machine the slower runs
measure the neighbours.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from provisioner.engine.config import Config
from provisioner.engine.contracts.models import Worker
from provisioner.engine.kit.servers import scim_server_process
from provisioner.engine.runtime.app import Runtime
from provisioner.rules.planner import TargetSpec
from provisioner.targets.mapping import build_resource
from provisioner.targets.scim_support import DEFAULT_MAPPING, USER_SCHEMA


def people(n: int) -> list[dict[str, str]]:
    return [
        {
            "remote_id": str(i),
            "first_name": f"First{i}",
            "last_name": f"Last{i}",
            "work_email": f"user{i}@bench.example",
            "title": "Engineer",
            "department": f"Dept{i % 10}",
            "employment_type": "full_time",
            "status": "active",
        }
        for i in range(n)
    ]


async def raw_loop(url: str, rows: list[dict[str, str]], concurrency: int) -> float:
    """The same users, built with the same mapping, POSTed by a bare httpx loop."""
    spec = TargetSpec.compile("raw", "disable", DEFAULT_MAPPING)
    bodies = []
    for row in rows:
        worker = Worker(id=f"hr:{row['remote_id']}", source="hr", **row)
        bodies.append({**build_resource(spec.render(worker), USER_SCHEMA), "active": True})
    semaphore = asyncio.Semaphore(concurrency)
    async with httpx.AsyncClient(base_url=url, limits=httpx.Limits(max_connections=concurrency)) as client:

        async def post(body: dict[str, object]) -> None:
            async with semaphore:
                (await client.post("/Users", json=body)).raise_for_status()

        start = time.perf_counter()
        await asyncio.gather(*(post(b) for b in bodies))
        return time.perf_counter() - start


async def engine_run(url: str, rows: list[dict[str, str]], concurrency: int, tmp: Path, bulk: bool = True) -> float:
    data = tmp / "people.json"
    data.write_text(json.dumps(rows))
    config = Config.model_validate(
        {
            "store": {"url": f"sqlite:///{tmp / 'bench.db'}"},
            "sources": [{"name": "hr", "type": "file", "path": str(data)}],
            "targets": [{"name": "app", "type": "scim", "base_url": url, "concurrency": concurrency, "bulk": bulk}],
            "policies": [{"name": "all", "when": "true", "grant": [{"target": "app"}]}],
        }
    )
    async with Runtime(config) as runtime:
        start = time.perf_counter()
        await runtime.poll("hr")
        await runtime.wait_idle(timeout=1800)
        elapsed = time.perf_counter() - start
        assert runtime.totals.failed == 0, runtime.totals.failures[:3]
    return elapsed


async def count_users(url: str) -> int:
    async with httpx.AsyncClient(base_url=url) as client:
        return int((await client.get("/Users", params={"count": 0})).json()["totalResults"])


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workers", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--no-bulk", action="store_true", help="one POST per user even if the server has /Bulk")
    parser.add_argument("--repeat", type=int, default=3, help="alternating runs of each side; best is kept")
    args = parser.parse_args()
    rows = people(args.workers)
    engine_runs: list[float] = []
    raw_runs: list[float] = []
    for run in range(1, args.repeat + 1):
        with (
            tempfile.TemporaryDirectory() as tmp,
            scim_server_process() as engine_url,
            scim_server_process() as raw_url,
        ):
            engine_runs.append(await engine_run(engine_url, rows, args.concurrency, Path(tmp), bulk=not args.no_bulk))
            raw_runs.append(await raw_loop(raw_url, rows, args.concurrency))
            assert await count_users(engine_url) == args.workers == await count_users(raw_url)
        print(f"run {run}: engine {engine_runs[-1]:6.2f} s, raw {raw_runs[-1]:6.2f} s", file=sys.stderr)
    engine_s, raw_s = min(engine_runs), min(raw_runs)
    engine_rate, raw_rate = args.workers / engine_s, args.workers / raw_s
    mode = "one POST per user" if args.no_bulk else "creates coalesced into /Bulk"
    print(f"workers:            {args.workers} (concurrency {args.concurrency}, best of {args.repeat}; engine: {mode})")
    print(f"engine end-to-end:  {engine_s:7.2f} s  {engine_rate:8.1f} workers/s  (poll → Kafka → plan → SCIM)")
    print(f"raw httpx loop:     {raw_s:7.2f} s  {raw_rate:8.1f} users/s")
    print(
        f"ratio engine/raw:   {engine_rate / raw_rate:7.2f}  (target ≥ 0.8; median ratio "
        f"{statistics.median(raw_runs) / statistics.median(engine_runs):.2f})"
    )


if __name__ == "__main__":
    asyncio.run(main())
