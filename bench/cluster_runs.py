"""One timed sync by `provisioner run` engines on a cluster of their own, for bench/cluster.py's
scale and adaptive steps: the engines, the app and where the time went (bench/cluster_trace.py)."""

from __future__ import annotations

import os
import statistics
import sys
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from cluster_fleet import (
    Fleet,
    applied,
    base_config,
    cpu_busy,
    cpu_jiffies,
    person,
    process_cpu,
    tcp_counters,
    until,
    write_people,
)
from cluster_trace import engine_trace
from latency_app import app_stats, app_timeline, latency_app
from scale import postgres_database
from sqlalchemy import create_engine, text

from provisioner.engine.store import Store
from tests.cluster import TansuCluster, group_state, tansu_cluster


def settled(fleet: Fleet, cluster: TansuCluster, engines: int) -> None:
    """Every engine ready and the group stable with all of them: a timing starts after the joins."""
    ready = until(lambda: len(fleet.ready()) == engines and all(code == 200 for code in fleet.ready().values()), 120)
    stable = until(lambda: group_state(cluster.bootstrap) == ("Stable", engines), 120)
    if ready is None or stable is None:
        raise RuntimeError(f"{engines} engines never came up together: see the logs in {fleet.folder}")


def start_fleet(fleet: Fleet, cluster: TansuCluster, engines: int) -> None:
    """The first engine alone until it is ready, then the others: engines started together on an
    empty store race to create APScheduler's table (`scheduler_jobs`) and the losers exit."""
    fleet.start("e0")
    settled(fleet, cluster, 1)
    for i in range(1, engines):
        fleet.start(f"e{i}")
    settled(fleet, cluster, engines)


@dataclass
class Run:
    """One timed sync: seconds to apply every worker (None: not done) and where the time went."""

    took: float | None
    # From the first event on the bus to the last applied: the engines' part, without the poll and
    # the relay's first publish that one engine does alike for one or three.
    applying: float | None = None
    machine: float = 0.0  # percent of the machine busy meanwhile
    cpu: dict[str, float] = field(default_factory=dict)  # CPU seconds by process
    notes: list[str] = field(default_factory=list)


PHASES = ("written", "published", "confirmed")


def outbox_phases(store_url: str, started: datetime) -> list[float]:
    """When the events were written (the poll), published (the relay) and confirmed (first, last of
    each), in seconds from the timing's start: the fixed cost before the engines can work."""
    columns = ("created_at", "published_at", "confirmed_at")
    query = ", ".join(f"min({c}), max({c})" for c in columns)
    engine = create_engine(store_url)
    try:
        with engine.connect() as connection:
            row = connection.execute(text(f"SELECT {query} FROM outboxevent")).one()
    finally:
        engine.dispose()
    return [(v.replace(tzinfo=UTC) - started).total_seconds() if v else float("nan") for v in row]


def sync_time(
    folder: Path,
    engines: int,
    workers: int,
    ceiling: int,
    adaptive: bool,
    capacity: int = 0,
    timeout: float = 900,
    groups: int = 10,
) -> Run:
    """Seconds from the people file written to every worker applied, by `engines` running engines.
    On a cluster of its own: the engines' consumer group is one name, and members of an earlier
    run that the broker still counts would hold the next run's group join."""
    people = folder / "people.json"
    with ExitStack() as stack:
        cluster = stack.enter_context(tansu_cluster(brokers=2))
        store_url = stack.enter_context(postgres_database())
        app = stack.enter_context(latency_app(capacity=capacity))
        fleet = Fleet(folder, base_config(store_url, cluster, app.url, people, ceiling, adaptive), stack)
        store = Store(store_url)  # the schema, before engines start together on it
        write_people(people, [])
        start_fleet(fleet, cluster, engines)
        pids = {**fleet.pid_of(), "app": app.pid, **{f"broker{i}": pid for i, pid in enumerate(cluster.pids())}}
        before, own, tcp = cpu_jiffies(), {k: process_cpu([pid]) for k, pid in pids.items()}, tcp_counters()
        skip = len(app_timeline(app.url)["in_flight"])  # samples before the timing
        with engine_trace(fleet.ports()) as trace:
            started = datetime.now(UTC)
            write_people(people, [person(i, f"Dept {i % groups}") for i in range(workers)])
            took = until(applied(store, workers), timeout)
        run = Run(took, machine=cpu_busy(before), cpu={k: process_cpu([pid]) - own[k] for k, pid in pids.items()})
        searched = {k: v for k, v in app_stats(app.url).items() if k.endswith(" searched")}
        timeline = app_timeline(app.url)
        busy = timeline["in_flight"][skip:]
        phases = outbox_phases(store_url, started)
        run.applying = took - phases[2] if took else None
        spent, answers = timeline["answer_s"]
        dropped = {k: v - tcp[k] for k, v in tcp_counters().items()}
        run.notes += [
            "outbox: " + ", ".join(f"{c} {phases[2 * i]:.1f}–{phases[2 * i + 1]:.1f} s" for i, c in enumerate(PHASES)),
            *trace.lines(),
            f"app: {statistics.mean(busy or [0]):.1f} requests in flight on average (max {max(busy or [0])}), "
            f"{answers:.0f} answers taking {1000 * spent / max(1, answers):.0f} ms on average, searches {searched}",
            "machine TCP: " + ", ".join(f"{k} +{v}" for k, v in dropped.items()),
            "CPU s: " + ", ".join(f"{k} {v:.1f}" for k, v in run.cpu.items()) + f"; machine {run.machine:.0f} % busy",
        ]
        return run


def timed(label: str, run: Run) -> Run:
    """Tell a run's figures and where its time went as it ends (stderr), with the machine's load."""
    took = f"{run.took:.1f} s" if run.took else "not done"
    load = " ".join(f"{v:.1f}" for v in os.getloadavg())
    print(f"  {label}: {took} (load {load})", *(f"    {note}" for note in run.notes), sep="\n", file=sys.stderr)
    return run


def median_of(times: list[float | None]) -> float | None:
    done = [t for t in times if t]
    return statistics.median(done) if len(done) == len(times) and done else None
