"""Kafka in tests: reading every record of a topic from the beginning (without a consumer
group), and publishing records or whole events as a service would."""
from __future__ import annotations

import asyncio
import datetime as dt
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from kontor.contracts import Contract
from kontor.envelope import Envelope, encode_payload
from kontor.kafka import servers
from kontor.topics import Topics


@dataclass
class Seen:
    topic: str
    partition: int
    offset: int
    key: str | None
    value: bytes | None
    headers: dict[str, str]

    @property
    def type(self) -> str | None:
        return self.headers.get("ce_type")

    @property
    def envelope(self) -> Envelope:
        return Envelope.from_headers([(k, v.encode()) for k, v in self.headers.items()])


async def read_topic(bootstrap: str, topic: str, *, min_count: int = 1, timeout_s: float = 20) -> list[Seen]:
    """All records of `topic` (all partitions) once at least `min_count` are there, or at timeout."""
    consumer = AIOKafkaConsumer(bootstrap_servers=servers(bootstrap), enable_auto_commit=False, group_id=None)
    await consumer.start()
    try:
        deadline = asyncio.get_running_loop().time() + timeout_s
        partitions = None
        while partitions is None:
            parts = consumer.partitions_for_topic(topic)
            if parts:
                partitions = [TopicPartition(topic, p) for p in sorted(parts)]
            elif asyncio.get_running_loop().time() > deadline:
                return []
            else:
                await consumer._client.force_metadata_update()
                await asyncio.sleep(0.2)
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        seen: list[Seen] = []
        while len(seen) < min_count and asyncio.get_running_loop().time() < deadline:
            batch = await consumer.getmany(timeout_ms=300)
            seen.extend(Seen(r.topic, r.partition, r.offset, r.key.decode() if r.key else None, r.value,
                             {k: v.decode(errors="replace") for k, v in (r.headers or ())})
                        for records in batch.values() for r in records)
        return seen
    finally:
        await consumer.stop()


async def produce(bootstrap: str, topic: str, value: bytes | None, *, key: bytes | None = None,
                  headers: list[tuple[str, bytes]] | None = None) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=servers(bootstrap), enable_idempotence=True, acks="all")
    await producer.start()
    try:
        await producer.send_and_wait(topic, value=value, key=key, headers=headers or [])
    finally:
        await producer.stop()


async def publish_event(bootstrap: str, topic_prefix: str, event: Contract, *, time: dt.datetime,
                        envelope: Envelope | None = None) -> Envelope:
    """Publish a contract as its service would (binary CloudEvents headers, key = aggregate id).
    Pass the same `envelope` again to simulate a redelivered duplicate."""
    [envelope] = await publish_events(bootstrap, topic_prefix, [event], time=time,
                                      envelopes=[envelope] if envelope else None)
    return envelope


async def publish_events(bootstrap: str, topic_prefix: str, events: list[Contract], *, time: dt.datetime,
                         envelopes: list[Envelope] | None = None) -> list[Envelope]:
    """Publish many contracts with one producer, in order, as their services would; their envelopes
    (given ones are used again: a redelivery)."""
    envelopes = envelopes or [Envelope.for_event(event, time=time) for event in events]
    producer = AIOKafkaProducer(bootstrap_servers=servers(bootstrap), enable_idempotence=True, acks="all",
                                linger_ms=5)
    await producer.start()
    try:
        sent = [await producer.send(Topics(topic_prefix).name(event.topic), value=encode_payload(event),
                                    key=event.aggregate_id.encode(), headers=envelope.headers())
                for event, envelope in zip(events, envelopes, strict=True)]
        await asyncio.gather(*sent)
    finally:
        await producer.stop()
    return envelopes
