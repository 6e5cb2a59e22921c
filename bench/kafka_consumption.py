"""Benchmark: what consuming one record costs the broker and the client, by how the consumer
fetches and commits.

A Kafka node of its own (the project's jars, port 29092, data in `.local/kafka-bench/`) gets a
topic of 3 partitions; a producer writes records of 2 KB at a steady rate (150/s by default, about
what a billing run sends a consumer group) while one consumer reads them as the services do
(`getone`, one record at a time). Four ways, taking turns, each round on a fresh topic and group:

- fetch **at once** (`fetch_min_bytes=1`, aiokafka's default: a fetch returns with the first
  record there, so under a trickle of events each fetch carries one) or **batched** (the services'
  `consumer_fetch_min_bytes` / `consumer_fetch_max_wait_ms` defaults);
- commit **per record** (what FastStream's acknowledgement does after each record) or every
  0.2 s (the offsets of the records processed so far).

It prints per round and way the broker's CPU (the JVM's utime+stime from /proc) and this process's
CPU (producer and consumer together, so only the differences between ways are the consumer's),
per record, plus the broker's CPU while idle for as long. The first round warms the JVM up and is
not shown; compare ways within one round (the machine's speed drifts).

    .venv/bin/python bench/kafka_consumption.py [--rate 150] [--seconds 12] [--rounds 3]
"""
from __future__ import annotations

import argparse
import asyncio
import time
import uuid

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from kontor.devinfra import cpu_seconds
from kontor.devinfra.kafka import LocalKafka
from kontor.kafka import ensure_topics
from kontor.settings import ServiceSettings

RECORD = b"x" * 2000


async def one_way(bootstrap: str, pid: int, *, rate: int, seconds: float, commit_every_s: float,
                  fetch_min_bytes: int, fetch_max_wait_ms: int) -> tuple[float, float, int]:
    """(broker ms, client ms) per record and the number of commits."""
    topic = f"bench-consumption-{uuid.uuid4().hex[:8]}"
    await ensure_topics(bootstrap, [topic], 3, 1)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5, acks="all", enable_idempotence=True)
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=topic, enable_auto_commit=False,
                                auto_offset_reset="earliest", fetch_min_bytes=fetch_min_bytes,
                                fetch_max_wait_ms=fetch_max_wait_ms)
    await producer.start()
    await consumer.start()
    try:
        total = int(rate * seconds)

        async def produce() -> None:
            for i in range(total):
                await producer.send(topic, RECORD, key=str(i).encode())
                await asyncio.sleep(1 / rate)
            await producer.flush()

        broker0, client0 = cpu_seconds(pid), time.process_time()
        producing = asyncio.create_task(produce())
        processed: dict[TopicPartition, int] = {}
        commits, last_commit = 0, time.monotonic()
        for _ in range(total):
            record = await consumer.getone()
            processed[TopicPartition(record.topic, record.partition)] = record.offset + 1
            if commit_every_s == 0 or time.monotonic() - last_commit >= commit_every_s:
                await consumer.commit(dict(processed))
                commits, last_commit = commits + 1, time.monotonic()
        await consumer.commit(dict(processed))
        await producing
        return (1000 * (cpu_seconds(pid) - broker0) / total, 1000 * (time.process_time() - client0) / total,
                commits + 1)
    finally:
        await consumer.stop()
        await producer.stop()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=int, default=150, help="records per second")
    parser.add_argument("--seconds", type=float, default=12.0, help="how long each way produces")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    defaults = ServiceSettings.model_fields
    batched = (defaults["consumer_fetch_min_bytes"].default, defaults["consumer_fetch_max_wait_ms"].default)
    ways = [("fetch at once, commit per record", 0.0, 1, 500),
            ("fetch at once, commit every 0.2 s", 0.2, 1, 500),
            (f"fetch batched ({batched[0]} B / {batched[1]} ms), commit per record", 0.0, *batched),
            (f"fetch batched ({batched[0]} B / {batched[1]} ms), commit every 0.2 s", 0.2, *batched)]
    kafka = LocalKafka(port=29092, name="kafka-bench")
    print(f"starting Kafka on {kafka.bootstrap} ...", flush=True)
    kafka.start()
    try:
        pid = kafka.process.pid if kafka.process else None
        if pid is None:
            raise SystemExit("port 29092 is taken by another Kafka: this bench measures a node of its own")
        await one_way(kafka.bootstrap, pid, rate=args.rate, seconds=args.seconds, commit_every_s=0.0,
                      fetch_min_bytes=1, fetch_max_wait_ms=500)  # warms the JVM up
        print(f"{args.rate} records/s of {len(RECORD)} B for {args.seconds:g} s per way; ms per record")
        print(f"{'round':>5}  {'way':62} {'broker':>7} {'client':>7} {'commits':>8}")
        for n in range(1, args.rounds + 1):
            before = cpu_seconds(pid)
            await asyncio.sleep(args.seconds)
            idle = 1000 * (cpu_seconds(pid) - before) / (args.rate * args.seconds)
            print(f"{n:>5}  {'broker idle for as long':62} {idle:7.3f}", flush=True)
            for name, commit_every_s, min_bytes, max_wait in ways:
                broker, client, commits = await one_way(
                    kafka.bootstrap, pid, rate=args.rate, seconds=args.seconds, commit_every_s=commit_every_s,
                    fetch_min_bytes=min_bytes, fetch_max_wait_ms=max_wait)
                print(f"{n:>5}  {name:62} {broker:7.3f} {client:7.3f} {commits:8d}", flush=True)
    finally:
        kafka.stop()


if __name__ == "__main__":
    asyncio.run(main())
