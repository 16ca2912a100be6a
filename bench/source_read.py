"""Source read speed: a full read vs an incremental read, for a paged SOAP source and an ATS.

    python bench/source_read.py [--workers 10000] [--hires 500]

Workday: N workers through Get_Workers pages of 999 (XML build + parse both sides), then 1% of
them changed and read incrementally. Lever: M hires, each needing its applications, offers and
posting (the client's documented 10 requests/s would make this a rate benchmark, so the limit is
lifted here on both sides). Prints records/s, the incremental/full time ratio and, for Workday,
the peak memory Python allocates during a full read (emulator and client share the process).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from provisioner.engine.kit.emulation import RateGate
from provisioner.engine.kit.servers import serve_asgi
from provisioner.sources import build_source
from provisioner.sources.lever import emulator as lever
from provisioner.sources.workday import emulator as workday


async def timed_read(source, cursor, memory: bool = False):  # type: ignore[no-untyped-def]
    """(read, seconds, peak bytes); with memory=True a second, traced read measures the peak
    (tracing slows Python down, so it is kept out of the timed one)."""
    started = time.perf_counter()
    read = await source.read(cursor)
    elapsed = time.perf_counter() - started
    peak = 0
    if memory:
        tracemalloc.start()
        await source.read(cursor)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return read, elapsed, peak


def report(name: str, full, incremental) -> None:  # type: ignore[no-untyped-def]
    (read, t_full, peak), (inc, t_inc, _) = full, incremental
    memory = f", peak {peak / 2**20:.1f} MiB (both sides)" if peak else ""
    print(
        f"{name:8} full: {len(read.workers):6d} records in {t_full:6.2f}s = {len(read.workers) / t_full:7.0f}/s"
        f"{memory} | incremental: {len(inc.workers):5d} records in {t_inc:5.2f}s"
        f" | ratio incremental/full {t_inc / t_full:.3f}"
    )


async def bench_workday(count: int) -> None:
    state = workday.WorkdayState()
    ids = state.seed(count)
    with serve_asgi(workday.create_app(state)) as server:
        source = build_source(
            "wd",
            "workday",
            {
                "base_url": f"{server.url}/ccx/service/acme/Human_Resources",
                "username": state.username,
                "password": state.password,
                "page_size": 999,
                "overlap": "0s",
            },
        )
        full = await timed_read(source, {}, memory=True)
        for emp_id in ids[::100]:
            state.change(emp_id, title="Changed")
        incremental = await timed_read(source, full[0].cursor)
        await source.aclose()
    report("workday", full, incremental)


async def bench_lever(count: int) -> None:
    state = lever.LeverState(gate=RateGate(rate=1e6, burst=10**6))
    ids = state.seed(count)
    with serve_asgi(lever.create_app(state)) as server:
        source = build_source(
            "lever",
            "lever",
            {
                "base_url": f"{server.url}/v1",
                "api_key": state.api_key,
                "rate_limit": "100000/s",
                "burst": 100000,
                "concurrency": 8,
                "overlap": "0s",
            },
        )
        full = await timed_read(source, {})
        for oid in ids[::100]:
            state.change(oid, name="Changed Name")
        incremental = await timed_read(source, full[0].cursor)
        await source.aclose()
    report("lever", full, incremental)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=10000)
    parser.add_argument("--hires", type=int, default=500)
    args = parser.parse_args()
    asyncio.run(bench_workday(args.workers))
    asyncio.run(bench_lever(args.hires))


if __name__ == "__main__":
    main()
