"""An engine on a real two-broker, durable cluster (Tansu on shared S3 storage) keeps working when
the broker it bootstrapped from is killed, and when that broker comes back and the other dies."""

from __future__ import annotations

import json
from pathlib import Path

from provisioner.engine.kit.servers import free_port, scim_app, serve_wsgi
from provisioner.engine.store import Store
from tests.cluster import TansuCluster
from tests.processes import engine, wait_for
from tests.storm import person


def _write(people: Path, count: int) -> None:
    # Written whole, then renamed: the 1 s poll never reads half a file.
    part = people.with_suffix(".part")
    part.write_text(json.dumps([person(i) for i in range(count)]))
    part.replace(people)


def test_an_engine_with_two_bootstrap_brokers_survives_losing_either(tmp_path: Path, kafka_cluster: TansuCluster):
    people, store_url = tmp_path / "people.json", f"sqlite:///{tmp_path / 'store.db'}"
    _write(people, 20)
    store = Store(store_url)
    with serve_wsgi(scim_app()) as scim:
        config = tmp_path / "config.yaml"
        config.write_text(
            json.dumps(
                {
                    "store": {"url": store_url},
                    # A topic prefix of its own: the session's cluster is shared with other tests.
                    "kafka": {"bootstrap_servers": kafka_cluster.bootstrap, "topic_prefix": f"t{free_port()}"},
                    "engine": {"listen": f"127.0.0.1:{free_port()}"},
                    "sources": [{"name": "hr", "type": "file", "path": str(people), "poll_interval": "1s"}],
                    "targets": [{"name": "app", "type": "scim", "base_url": scim.url}],
                    "policies": [{"name": "all", "when": "true", "grant": [{"target": "app"}]}],
                    "safety": {"max_deprovisions": None, "max_deprovision_ratio": None},
                }
            )
        )
        applied = lambda n: lambda: len(store.links.all()) >= n and store.outbox.pending_count() == 0  # noqa: E731
        with engine(config, tmp_path / "engine.log") as process:
            wait_for(applied(20), timeout=60, what="the first 20 workers applied")
            kafka_cluster.kill(0)  # the first bootstrap broker, the one the engine asked first
            _write(people, 40)
            wait_for(applied(40), timeout=90, what="20 hires applied with broker 0 down")
            kafka_cluster.start(0)
            kafka_cluster.kill(1)
            _write(people, 60)
            wait_for(applied(60), timeout=90, what="20 hires applied with broker 1 down, broker 0 back")
            kafka_cluster.start(1)
            assert process.poll() is None, "the engine must not have exited"
        assert len(store.links.all()) == 60
        assert store.outbox.pending_count() == 0
