"""At-least-once from Kafka, for real: two `provisioner run` processes share one PostgreSQL store
and one broker; one is killed with SIGKILL mid-load. Its uncommitted events are delivered again to
the other member of the consumer group (offsets are committed only past recorded outcomes), and
every event is applied exactly once: no duplicate account, nothing missing."""

from __future__ import annotations

import json
import os
import signal
import time
from collections import Counter
from typing import Any

import pytest
from sqlmodel import select

from provisioner.engine.kit.servers import free_port, scim_app, serve_wsgi
from provisioner.engine.store import Store
from provisioner.engine.store.tables import Lease
from tests.processes import broker, engine, wait_for
from tests.storm import list_resources, person

WORKERS = 200


class _Slow:
    """A SCIM app that takes its time creating users, so fetched events wait in flight for longer
    than Kafka's auto-commit interval (5 s): committed by then, they would be lost with the process."""

    def __init__(self, inner: Any, seconds: float):
        self.inner, self.seconds = inner, seconds

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        if environ["REQUEST_METHOD"] == "POST":
            time.sleep(self.seconds)
        return self.inner(environ, start_response)


def _relay_pid(store: Store) -> int:
    with store.db.session() as s:
        lease = s.exec(select(Lease).where(Lease.name == "relay")).one()
    return int(lease.owner.split(":")[1])  # host:pid:nonce


@pytest.mark.parametrize("store_url", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True)
def test_a_killed_consumer_has_its_events_applied_exactly_once_by_the_other(tmp_path, store_url):
    people = tmp_path / "people.json"
    people.write_text(json.dumps([person(i) for i in range(WORKERS)]))
    store = Store(store_url)
    with serve_wsgi(_Slow(scim_app(), 0.25)) as scim, broker() as bootstrap:
        config = tmp_path / "config.yaml"
        config.write_text(
            json.dumps(
                {
                    "store": {"url": store_url},
                    "kafka": {"bootstrap_servers": bootstrap, "partitions": 4},
                    "engine": {"concurrency": 4, "batch_size": 20, "listen": f"127.0.0.1:{free_port()}"},
                    "sources": [{"name": "hr", "type": "file", "path": str(people), "poll_interval": "1h"}],
                    # one POST per person, few at a time: a load that lasts long enough to die in
                    "targets": [{"name": "app", "type": "scim", "base_url": scim.url, "bulk": False, "concurrency": 2}],
                    "policies": [{"name": "all", "when": "true", "grant": [{"target": "app", "groups": ["staff"]}]}],
                    "safety": {"max_deprovisions": None, "max_deprovision_ratio": None},
                }
            )
        )
        with engine(config, tmp_path / "a.log") as a, engine(config, tmp_path / "b.log") as b:
            wait_for(lambda: 1 <= len(store.links.all()), what="the load to be under way")
            # Past Kafka's auto-commit interval (5 s): auto-committed offsets would now be ahead of
            # what the victim has applied, and its events in flight would be lost with it.
            under_way = time.monotonic()
            wait_for(lambda: time.monotonic() - under_way > 6.5, what="6.5 s of load")
            assert len(store.links.all()) < WORKERS * 0.8, "the load finished before the kill; make it longer"
            # The one that does not relay dies: the relay lease never changes hands, so nothing is
            # re-published, and only the consumer group can hand its events to the survivor.
            relay = _relay_pid(store)
            victim, survivor = (b, a) if relay == a.pid else (a, b)
            assert relay == survivor.pid
            os.killpg(victim.pid, signal.SIGKILL)
            victim.wait(timeout=20)
            killed_at = time.monotonic()
            survivor_log = tmp_path / ("a.log" if survivor is a else "b.log")
            wait_for(
                lambda: len(store.links.all()) == WORKERS and store.outbox.pending_count() == 0,
                what=f"every event applied after the kill (survivor: {survivor_log.read_text()[-2000:]})",
            )
            converged = time.monotonic() - killed_at
            assert survivor.poll() is None, "the surviving engine must still be running"
            assert _relay_pid(store) == survivor.pid
        said = survivor_log.read_text()
        users = list_resources(scim.url, "Users")

    assert len(users) == WORKERS and len({u["externalId"] for u in users}) == WORKERS  # no duplicate
    links = store.links.all("app")
    assert sorted(link.worker_id for link in links) == sorted(f"hr:{i}" for i in range(WORKERS))
    assert {link.account_id for link in links} == {u["id"] for u in users}
    made = Counter(e.worker_id for e in store.log.recent(limit=10_000) if e.action in ("create", "adopt"))
    assert set(made.values()) == {1}, [w for w, n in made.items() if n != 1]
    assert store.failures.all() == []
    # Delivered again by the consumer group, not re-published by a relay that took over a lease.
    assert "re-publishing" not in said, said[-2000:]
    print(f"converged {converged:.1f}s after the kill")
    store.close()
