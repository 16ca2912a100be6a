"""Engines joining mid-wave (issue 22): one `provisioner run` is applying a wave when two more join
the consumer group, so partitions move while events are in flight. Every change must be written
once (no double effect), every outcome recorded (no livelock on recording), and the wave
must converge with no manual step."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from contextlib import ExitStack
from typing import Any

import pytest

from provisioner.engine.kit.servers import free_port, scim_app, serve_wsgi
from provisioner.engine.store import Store
from tests.processes import answers, broker, engine, wait_for
from tests.storm import list_resources, person

WORKERS = 600


class _Counting:
    """A SCIM app that takes its time on writes (so events are in flight when partitions move) and
    counts the writes per resource path, the double effects the store's log cannot see."""

    def __init__(self, inner: Any, seconds: float):
        self.inner, self.seconds = inner, seconds
        self.writes: Counter[str] = Counter()
        self._lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        method = environ["REQUEST_METHOD"]
        if method in ("POST", "PUT", "PATCH") and "/Users" in environ.get("PATH_INFO", ""):
            with self._lock:
                self.writes[method] += 1
            time.sleep(self.seconds)
        return self.inner(environ, start_response)


def _config(tmp_path: Any, store_url: str, bootstrap: str, scim_url: str, people: Any, name: str) -> tuple[Any, str]:
    config, listen = tmp_path / f"{name}.yaml", f"127.0.0.1:{free_port()}"
    config.write_text(
        json.dumps(
            {
                "store": {"url": store_url},
                "kafka": {"bootstrap_servers": bootstrap, "partitions": 6},
                "engine": {"concurrency": 4, "batch_size": 50, "listen": listen},
                "sources": [{"name": "hr", "type": "file", "path": str(people), "poll_interval": "1h"}],
                "targets": [{"name": "app", "type": "scim", "base_url": scim_url, "bulk": False, "concurrency": 4}],
                "policies": [{"name": "all", "when": "true", "grant": [{"target": "app", "groups": ["staff"]}]}],
                "safety": {"max_deprovisions": None, "max_deprovision_ratio": None},
            }
        )
    )
    return config, f"http://{listen}/healthz"


@pytest.mark.parametrize("store_url", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True)
def test_engines_joining_mid_wave_write_each_change_once_and_converge(tmp_path, store_url):
    people = tmp_path / "people.json"
    people.write_text(json.dumps([person(i) for i in range(WORKERS)]))
    store = Store(store_url)
    app = _Counting(scim_app(), 0.12)
    with serve_wsgi(app) as scim, broker() as bootstrap, ExitStack() as engines:
        logs = [tmp_path / f"{n}.log" for n in "abc"]
        engines.enter_context(engine(_config(tmp_path, store_url, bootstrap, scim.url, people, "a")[0], logs[0]))
        wait_for(lambda: len(store.links.all()) >= 10, what="the wave to be under way")
        joining = [_config(tmp_path, store_url, bootstrap, scim.url, people, name) for name in "bc"]
        for n, (config, _) in enumerate(joining, 1):  # two more join: partitions move with events in flight
            engines.enter_context(engine(config, logs[n]))
        for _, healthz in joining:
            wait_for(lambda healthz=healthz: answers(healthz), what="the joining engines to be up")
        assert len(store.links.all()) < WORKERS * 0.7, "the wave finished before the others joined; make it longer"
        wait_for(
            lambda: store.outbox.pending_count() == 0 and len(store.links.all()) == WORKERS,
            timeout=90,
            what="every event applied and confirmed after the rebalance",
        )
        said = "\n".join(log.read_text() for log in logs)
        users = list_resources(scim.url, "Users")
        groups = [g for g in list_resources(scim.url, "Groups") if g["displayName"] == "staff"]
    assert "could not record" not in said, said[-3000:]
    assert len(users) == WORKERS and len({u["externalId"] for u in users}) == WORKERS
    # One create per person, across the three engines: no change applied twice.
    assert app.writes["POST"] == WORKERS, dict(app.writes)
    assert app.writes["PATCH"] + app.writes["PUT"] == 0, dict(app.writes)
    # One group of the name across the three engines, everyone in it (group claims in the store).
    assert len(groups) == 1, [g["id"] for g in groups]
    assert {m["value"] for m in groups[0].get("members", [])} == {u["id"] for u in users}
    made = Counter(e.worker_id for e in store.log.recent(limit=10_000) if e.action in ("create", "adopt"))
    assert set(made.values()) == {1}, [w for w, n in made.items() if n != 1]
    store.close()
