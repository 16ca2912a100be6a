"""Scheduled jobs with two real engine processes sharing one database: each job runs once per
period, the job store survives a restart without doubling, and a lease decides who runs."""

from __future__ import annotations

import json
from datetime import timedelta
from itertools import pairwise

from sqlalchemy import text

from provisioner.engine.store import Store
from tests.processes import engine_process, wait_for

# The deferred job's period, and the reconcile's: short, so eight periods pass in a few seconds.
PERIOD, RECONCILE = 0.5, 1.0


def test_two_processes_run_each_job_once_per_period_and_a_restart_keeps_the_jobs(tmp_path, store_url):
    config = tmp_path / "config.yaml"
    config.write_text(
        json.dumps(
            {
                "store": {"url": store_url},
                # two engines on one machine: each takes a free port for its HTTP server
                "engine": {"deferred_interval": f"{PERIOD}s", "listen": "127.0.0.1:0"},
                "reconcile": {"schedule": f"{RECONCILE}s"},
            }
        )
    )
    store = Store(store_url)
    with engine_process(config), engine_process(config):
        wait_for(lambda: len(store.schedule.job_runs("deferred:all")) >= 8)
    runs = store.schedule.job_runs("deferred:all")
    gaps = [b.started_at - a.started_at for a, b in pairwise(runs)]
    assert min(gaps) > timedelta(seconds=PERIOD / 2), gaps  # never twice in one period
    reconciles = store.schedule.job_runs("reconcile:all")
    assert reconciles and all(
        b.started_at - a.started_at > timedelta(seconds=RECONCILE / 2) for a, b in pairwise(reconciles)
    )
    with store.engine.connect() as conn:
        assert sorted(conn.execute(text("SELECT id FROM scheduler_jobs")).scalars()) == [
            "deferred:all",
            "reconcile:all",
            "retries:all",
        ]

    before = len(store.schedule.job_runs("deferred:all"))
    with engine_process(config):  # a restart: the stored job goes on, not a second copy of it
        wait_for(lambda: len(store.schedule.job_runs("deferred:all")) >= before + 3)
    with store.engine.connect() as conn:
        assert sorted(conn.execute(text("SELECT id FROM scheduler_jobs")).scalars()) == [
            "deferred:all",
            "reconcile:all",
            "retries:all",
        ]
    assert len({r.owner for r in store.schedule.job_runs()}) >= 2  # leases moved between processes
    store.close()
