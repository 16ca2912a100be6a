"""An engine on a real two-broker, durable cluster (Tansu on shared S3 storage) keeps working when
the broker it bootstrapped from is killed, and when that broker comes back and the other dies."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import httpx

from provisioner.engine.kit.servers import free_port, scim_app, serve_wsgi
from provisioner.engine.store import Store
from tests.cluster import TansuCluster, group_state
from tests.processes import answers, engine, wait_for
from tests.storm import person


def _write(people: Path, count: int) -> None:
    # Written whole, then renamed: the 1 s poll never reads half a file.
    part = people.with_suffix(".part")
    part.write_text(json.dumps([person(i) for i in range(count)]))
    part.replace(people)


def _config(tmp_path: Path, cluster: TansuCluster, scim_url: str, poll: str, **kafka: object) -> tuple[Path, str]:
    config, port = tmp_path / "config.yaml", free_port()
    config.write_text(
        json.dumps(
            {
                "store": {"url": f"sqlite:///{tmp_path / 'store.db'}"},
                # A topic prefix of its own: the session's cluster is shared with other tests.
                "kafka": {"bootstrap_servers": cluster.bootstrap, "topic_prefix": f"t{free_port()}", **kafka},
                "engine": {"listen": f"127.0.0.1:{port}"},
                "sources": [
                    {"name": "hr", "type": "file", "path": str(tmp_path / "people.json"), "poll_interval": poll}
                ],
                "targets": [{"name": "app", "type": "scim", "base_url": scim_url}],
                "policies": [{"name": "all", "when": "true", "grant": [{"target": "app"}]}],
                "safety": {"max_deprovisions": None, "max_deprovision_ratio": None},
            }
        )
    )
    return config, f"http://127.0.0.1:{port}/readyz"


def test_an_engine_with_two_bootstrap_brokers_survives_losing_either(tmp_path: Path, kafka_cluster: TansuCluster):
    people = tmp_path / "people.json"
    _write(people, 20)
    store = Store(f"sqlite:///{tmp_path / 'store.db'}")
    with serve_wsgi(scim_app()) as scim:
        config, readyz = _config(tmp_path, kafka_cluster, scim.url, "1s")
        applied = lambda n: lambda: len(store.links.all()) >= n and store.outbox.pending_count() == 0  # noqa: E731
        with engine(config, tmp_path / "engine.log") as process:
            wait_for(applied(20), timeout=60, what="the first 20 workers applied")
            kafka_cluster.kill(0)  # the first bootstrap broker, the one the engine asked first
            _write(people, 40)
            wait_for(applied(40), timeout=90, what="20 hires applied with broker 0 down")
            # ready, and honest about it: the broker check reaches the cluster through broker 1
            wait_for(lambda: answers(readyz), timeout=30, what="/readyz 200 with broker 0 down")
            kafka_cluster.start(0)
            kafka_cluster.kill(1)
            _write(people, 60)
            wait_for(applied(60), timeout=90, what="20 hires applied with broker 1 down, broker 0 back")
            kafka_cluster.start(1)
            assert process.poll() is None, "the engine must not have exited"
        assert len(store.links.all()) == 60
        assert store.outbox.pending_count() == 0


def test_sync_once_leaves_the_running_engines_group_alone(tmp_path: Path, kafka_cluster: TansuCluster):
    """`sync --once` beside a running engine takes its partitions by assignment: the group never sees
    a second member (a join would make every running engine rebalance), and every change is applied
    once (the store's event claims decide who applies what)."""
    people = tmp_path / "people.json"
    _write(people, 10)
    store = Store(f"sqlite:///{tmp_path / 'store.db'}")
    with serve_wsgi(scim_app()) as scim:
        config, _ = _config(tmp_path, kafka_cluster, scim.url, "1h", partitions=3)
        with engine(config, tmp_path / "engine.log"):
            wait_for(lambda: len(store.links.all()) == 10, timeout=60, what="the first 10 applied by the engine")
            wait_for(lambda: group_state(kafka_cluster.bootstrap)[1] == 1, what="the engine in its group")
            _write(people, 25)
            sync = subprocess.Popen(
                [sys.executable, "-m", "provisioner.engine.cli", "sync", "--once", "-c", str(config)],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
            )
            members = set()
            while sync.poll() is None:
                members.add(group_state(kafka_cluster.bootstrap)[1])
            assert sync.wait() == 0, sync.stderr.read().decode()[-2000:] if sync.stderr else ""
            assert members == {1}, f"the group had {sorted(members)} members during the one-shot run"
        assert len(store.links.all()) == 25 and store.outbox.pending_count() == 0
        users = httpx.get(f"{scim.url}/Users", params={"count": 1000}).json()
        assert users["totalResults"] == 25  # nobody created twice


def test_sync_once_alone_on_a_cluster_applies_everything_by_assignment(tmp_path: Path, kafka_cluster: TansuCluster):
    """No engine running: the one-shot run consumes its own events, by assignment (no group join),
    and a second run with nothing to do finds everything applied."""
    people = tmp_path / "people.json"
    _write(people, 15)
    store = Store(f"sqlite:///{tmp_path / 'store.db'}")
    # The group is every engine's: one an earlier test stopped may still be in it for a moment.
    wait_for(lambda: group_state(kafka_cluster.bootstrap)[1] == 0, what="the engine group empty before the run")
    with serve_wsgi(scim_app()) as scim:
        config, _ = _config(tmp_path, kafka_cluster, scim.url, "1h", partitions=3)
        for _ in range(2):
            sync = subprocess.run(
                [sys.executable, "-m", "provisioner.engine.cli", "sync", "--once", "-c", str(config)],
                capture_output=True,
                timeout=120,
            )
            assert sync.returncode == 0, sync.stderr.decode()[-2000:]
            assert len(store.links.all()) == 15 and store.outbox.pending_count() == 0
        assert group_state(kafka_cluster.bootstrap)[1] == 0  # it never joined
