"""The Bus port on Kafka: the embedded Tansu broker, or the cluster of `kafka.bootstrap_servers`.

The consumer is FastStream's batch subscriber (offsets committed by hand, runtime/offsets.py); the
relay publishes through a producer of its own that fills record batches per partition
(KafkaPublisher); dead letters are copied through FastStream's producer. TLS and SASL come from
one mapping (kafka_clients.py), and every client falls back to the bootstrap servers when the
brokers it learned stop answering.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from contextlib import AsyncExitStack
from typing import Annotated, Any

from aiokafka import AIOKafkaProducer, ConsumerRebalanceListener, TopicPartition
from aiokafka.partitioner import DefaultPartitioner
from faststream import AckPolicy, Context
from faststream.kafka import KafkaBroker
from faststream.kafka.message import KafkaMessage
from opentelemetry.trace import Span

from provisioner.engine.config import KafkaConfig
from provisioner.engine.kit import tracing
from provisioner.engine.runtime.bus import (
    CONSUMER_GROUP,
    EVENT_HEADERS,
    consumer_source,
    dead_letter_topic,
    embedded_broker,
    ensure_topics,
    events_topic,
    raw_values,
)
from provisioner.engine.runtime.kafka_clients import (
    broker_options,
    client_options,
    rebootstrapping,
    rebootstrapping_broker,
)
from provisioner.engine.runtime.ports import Batch, Handler, KeyedRecord, Partition, Publisher, RebalanceListener

# Record batches well under Kafka's default 1 MiB message.max.bytes (aiokafka's default is 16 KiB,
# which made a batch of ~17 events).
BATCH_BYTES = 256 * 1024
_HEADERS = [(name, value.encode()) for name, value in EVENT_HEADERS.items()]


class KafkaBus:
    def __init__(self, config: KafkaConfig, *, batch_size: int, one_shot: bool = False):
        self.config = config
        self.batch_size = batch_size
        self.one_shot = one_shot  # `sync --once`: takes partitions by assignment, never joins the group
        self.broker: KafkaBroker | None = None
        self._bootstrap: list[str] = []
        self._handler: Handler | None = None
        self._subscribers: list[Any] = []
        self._stack = AsyncExitStack()

    async def start(self, handler: Handler | None, listener: RebalanceListener) -> None:
        try:
            await self._start(handler, listener)
        except BaseException:
            await self._stack.aclose()
            raise

    async def _start(self, handler: Handler | None, listener: RebalanceListener) -> None:
        kafka = self.config
        topic = events_topic(kafka)
        self._bootstrap = kafka.bootstrap_servers or [await self._stack.enter_async_context(embedded_broker())]
        partitions = await ensure_topics(self._bootstrap, kafka, [topic, dead_letter_topic(kafka)])
        assignment, topics = consumer_source(kafka, topic, partitions, one_shot=self.one_shot)
        broker = KafkaBroker(
            self._bootstrap,
            logger=logging.getLogger("provisioner.kafka"),
            log_level=logging.DEBUG,
            **broker_options(kafka),
        )
        if handler is not None:
            self._handler = handler
            subscriber = broker.subscriber(
                *topics,
                **assignment,
                group_id=CONSUMER_GROUP,  # offsets are committed under it either way (Offsets)
                batch=True,
                auto_offset_reset="earliest",
                max_records=self.batch_size,
                # When a fetch comes back empty FastStream also sleeps this long before the next:
                # an idle engine's reaction time is twice this (200 ms made a webhook take 400 ms).
                batch_timeout_ms=50,
                # Offsets are committed by hand, only past what the store has recorded (Offsets).
                ack_policy=AckPolicy.MANUAL,
                decoder=raw_values,
                # Lost partitions: stop starting their work before the new owner starts (rebalance.py).
                **({"listener": _Listening(listener)} if topics else {}),
            )
            subscriber(self._on_batch)
            self._subscribers.append(subscriber)
        await broker.start()
        self._stack.push_async_callback(broker.stop)
        rebootstrapping_broker(broker, self._subscribers)
        self.broker = broker

    async def _on_batch(self, messages: list[bytes], message: Annotated[KafkaMessage, Context("message")]) -> None:
        assert self._handler is not None  # subscribed only with one
        records = message.raw_message if isinstance(message.raw_message, tuple) else (message.raw_message,)
        await self._handler(Batch(records, _Consumer(message.consumer)))

    def publisher(self) -> Publisher:
        options = client_options(self.config)
        if self.config.compression != "none":
            options["compression_type"] = self.config.compression
        return KafkaPublisher(self._bootstrap, events_topic(self.config), options)

    async def dead_letter(self, key: bytes, value: bytes, error: str) -> None:
        if self.broker is not None:
            await self.broker.publish(
                value, dead_letter_topic(self.config), key=key, headers={**EVENT_HEADERS, "x-error": error[:1000]}
            )

    async def ping(self) -> bool:
        return self.broker is not None and await self.broker.ping(timeout=2.0)

    async def stop_consuming(self) -> None:
        for subscriber in self._subscribers:
            await subscriber.stop()

    async def aclose(self) -> None:
        await self._stack.aclose()


class KafkaPublisher:
    """The relay's producer: it fills Kafka record batches itself, one per partition, instead of
    sending message by message (a first sync of 100,000 people spent two seconds of its one busy
    core in per-message futures and framework layers that a stored payload does not need)."""

    def __init__(self, bootstrap: list[str], topic: str, options: dict[str, Any]):
        self.bootstrap = bootstrap
        self.topic = topic
        self.options = options  # TLS and SASL (kafka_clients.client_options), compression
        self._producer: AIOKafkaProducer | None = None
        self._partitioner = DefaultPartitioner()  # Kafka's own: murmur2 of the key

    async def publish(self, records: Sequence[KeyedRecord]) -> None:
        """Every record, acknowledged by the cluster (all in-sync replicas) before this returns.

        One partition's batches go strictly one after another, each once the previous one is
        acknowledged, and a partition stops at its first failure: had a later batch been queued
        behind one that failed (its delivery timed out while the cluster was away), it could land
        first, and the retry of the earlier one after it — a worker's older event applied last.
        The partitions are sent side by side."""
        producer = await self._started()
        partitions = sorted(await producer.partitions_for(self.topic))
        by_partition: dict[int, list[KeyedRecord]] = {}
        for key, value in records:
            by_partition.setdefault(self._partitioner(key, partitions, partitions), []).append((key, value))
        try:
            async with asyncio.TaskGroup() as group:
                for partition, mine in by_partition.items():
                    group.create_task(self._send_in_order(producer, partition, mine))
        except ExceptionGroup as failed:  # the first failure says why; the others are its echoes
            raise failed.exceptions[0] from None

    async def _send_in_order(self, producer: AIOKafkaProducer, partition: int, records: list[KeyedRecord]) -> None:
        batch = producer.create_batch()
        spans: list[Span] = []  # producer spans of sampled changes, ended once their batch is acknowledged
        for key, value in records:
            # The event's trace context goes in the headers too (CloudEvents Distributed Tracing).
            traceparent, span = tracing.publishing(value, self.topic, partition)
            headers = [*_HEADERS, (tracing.TRACEPARENT, traceparent.encode())] if traceparent else _HEADERS
            if span is not None:
                spans.append(span)
            # None: the batch is full, so it goes and the record opens the next one (an empty
            # batch takes its first record whatever its size; the broker judges it).
            while batch.append(key=key, value=value, timestamp=None, headers=headers) is None:
                await (await producer.send_batch(batch, self.topic, partition=partition))
                batch = producer.create_batch()
        try:
            await (await producer.send_batch(batch, self.topic, partition=partition))
        finally:
            for span in spans:
                span.end()

    async def _started(self) -> AIOKafkaProducer:
        # Started on the first rows, not with the engine: a sync with nothing to publish needs none.
        if self._producer is None:
            producer = AIOKafkaProducer(
                bootstrap_servers=self.bootstrap, acks="all", max_batch_size=BATCH_BYTES, **self.options
            )
            rebootstrapping(producer.client)
            try:
                await producer.start()
            except BaseException:  # an unreachable cluster: closed now, a new one tries next turn
                await producer.stop()
                raise
            self._producer = producer
        return self._producer

    async def aclose(self) -> None:
        if self._producer is not None:
            await self._producer.stop()
            self._producer = None


class _Consumer:
    """aiokafka's consumer as the port's Consumer (it wants its own TopicPartition type)."""

    def __init__(self, consumer: Any):
        self._consumer = consumer

    def assignment(self) -> set[Partition]:
        return {Partition(*p) for p in self._consumer.assignment()}

    async def commit(self, offsets: dict[Partition, int]) -> None:
        await self._consumer.commit({TopicPartition(*p): o for p, o in offsets.items()})

    def highwater(self, partition: Partition) -> int | None:
        return self._consumer.highwater(TopicPartition(*partition))

    async def committed(self, partition: Partition) -> int | None:
        return await self._consumer.committed(TopicPartition(*partition))

    async def position(self, partition: Partition) -> int:
        return await self._consumer.position(TopicPartition(*partition))


class _Listening(ConsumerRebalanceListener):
    """The port's listener as aiokafka calls it (awaited before the consumer rejoins the group)."""

    def __init__(self, listener: RebalanceListener):
        self.listener = listener

    async def on_partitions_revoked(self, revoked: set[Any]) -> None:
        await self.listener.on_partitions_revoked({Partition(*p) for p in revoked})

    async def on_partitions_assigned(self, assigned: set[Any]) -> None:
        await self.listener.on_partitions_assigned({Partition(*p) for p in assigned})
