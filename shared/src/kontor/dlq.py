"""Dead letters: inspect and replay what a service's consumers set aside.

A dead letter is the original record (key, value, headers, so its `ce_id`) plus `x-dlq-*`
headers that say why (`kontor.consumer`). `kontor-<service> dlq list | show | replay` reads the
service's dead-letter topics (`<topic>.dlq.<consumer-group>` of every topic it consumes):

- `list` prints one line per dead letter (event id, type, reason, error, attempts, where from);
- `show EVENT_ID` prints one in full (headers and payload);
- `replay` (by `--event-id`, by `--type`, or `--all`) publishes each chosen dead letter again to
  its original topic with its original key, headers and `ce_id`, so the consumers' inboxes drop
  whatever was already applied: a second replay changes nothing. Every replayed record is
  logged and counted.
"""
from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from kontor.kafka import create_producer, servers
from kontor.logging import get_logger
from kontor.settings import ServiceSettings
from kontor.topics import Topics

log = get_logger(__name__)


@dataclass(frozen=True)
class DeadLetter:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...]

    def header(self, name: str) -> str | None:
        for k, v in self.headers:
            if k == name:
                return v.decode(errors="replace")
        return None

    @property
    def event_id(self) -> str | None:
        return self.header("ce_id")

    @property
    def event_type(self) -> str | None:
        return self.header("ce_type")

    @property
    def original_topic(self) -> str:
        return self.header("x-dlq-original-topic") or self.topic.split(".dlq.")[0]

    @property
    def original_headers(self) -> list[tuple[str, bytes]]:
        return [(k, v) for k, v in self.headers if not k.startswith("x-dlq-")]

    def summary(self) -> dict:
        return {"event_id": self.event_id, "type": self.event_type, "reason": self.header("x-dlq-reason"),
                "error": (self.header("x-dlq-error") or "")[:200], "attempts": self.header("x-dlq-attempts"),
                "from": f"{self.original_topic}[{self.header('x-dlq-original-partition')}]"
                        f"@{self.header('x-dlq-original-offset')}",
                "dlq": f"{self.topic}[{self.partition}]@{self.offset}"}


def dead_letter_topics(spec, settings: ServiceSettings) -> list[str]:
    topics = Topics(settings.topic_prefix)
    found = set()
    for group, contracts in spec.consumes():
        for contract in contracts:
            found.add(topics.dlq(contract.topic, group))
    return sorted(found)


async def read_dead_letters(bootstrap: str, topics: list[str]) -> list[DeadLetter]:
    """Every record of these topics, from the beginning to the end as of now."""
    admin = AIOKafkaAdminClient(bootstrap_servers=servers(bootstrap), client_id="kontor-dlq")
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        described = await admin.describe_topics([t for t in topics if t in existing]) if existing & set(topics) else []
    finally:
        await admin.close()
    partitions = [TopicPartition(t["topic"], p["partition"]) for t in described if t["error_code"] == 0
                  for p in sorted(t["partitions"], key=lambda p: p["partition"])]
    if not partitions:
        return []
    consumer = AIOKafkaConsumer(bootstrap_servers=servers(bootstrap), enable_auto_commit=False, group_id=None)
    await consumer.start()
    try:
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        end = await consumer.end_offsets(partitions)
        found: list[DeadLetter] = []
        async def behind() -> bool:
            for tp in partitions:
                if await consumer.position(tp) < end[tp]:
                    return True
            return False

        while await behind():
            batch = await consumer.getmany(*partitions, timeout_ms=1000)
            found.extend(DeadLetter(r.topic, r.partition, r.offset, r.key, r.value,
                                    tuple((k, bytes(v)) for k, v in (r.headers or ())))
                         for records in batch.values() for r in records
                         if r.offset < end[TopicPartition(r.topic, r.partition)])
        return sorted(found, key=lambda d: (d.topic, d.partition, d.offset))
    finally:
        await consumer.stop()


def choose(letters: list[DeadLetter], *, event_ids: list[str] | None = None, event_type: str | None = None,
           everything: bool = False) -> list[DeadLetter]:
    if everything:
        return letters
    if event_ids:
        return [d for d in letters if d.event_id in set(event_ids)]
    if event_type:
        return [d for d in letters if d.event_type == event_type]
    return []


async def replay(bootstrap: str, letters: list[DeadLetter], *, client_id: str) -> int:
    """Publish each dead letter to its original topic, as it was; the number replayed."""
    producer = create_producer(bootstrap, client_id)
    await producer.start()
    try:
        for d in letters:
            await producer.send_and_wait(d.original_topic, value=d.value, key=d.key, headers=d.original_headers)
            log.info("dead letter replayed", event_id=d.event_id, event_type=d.event_type, to=d.original_topic,
                     dlq=f"{d.topic}[{d.partition}]@{d.offset}")
    finally:
        await producer.stop()
    log.info("dead letters replayed", count=len(letters))
    return len(letters)


# -- the CLI: kontor-<service> dlq ... ----------------------------------------------------------

def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="dlq_command", required=True)
    sub.add_parser("list", help="one line per dead letter").add_argument("--json", action="store_true")
    show = sub.add_parser("show", help="one dead letter in full")
    show.add_argument("event_id")
    again = sub.add_parser("replay", help="publish dead letters again to their original topic")
    which = again.add_mutually_exclusive_group(required=True)
    which.add_argument("--event-id", action="append", help="this event (repeatable)")
    which.add_argument("--type", help="every dead letter of this event type, e.g. kontor.invoice.issued.v1")
    which.add_argument("--all", action="store_true", help="every dead letter of the service")
    again.add_argument("--topic", help="only this dead-letter topic")


def command(spec):
    """The `dlq` command of a service's CLI."""
    from kontor.service import Command

    def run(settings: ServiceSettings, args: argparse.Namespace) -> int:
        return asyncio.run(_run(spec, settings, args))

    return Command("dlq", "inspect and replay the dead letters of this service's consumers", add_arguments, run)


async def _run(spec, settings: ServiceSettings, args: argparse.Namespace, out=sys.stdout) -> int:
    topics = dead_letter_topics(spec, settings)
    if getattr(args, "topic", None):
        topics = [t for t in topics if t == args.topic]
    letters = await read_dead_letters(settings.kafka_bootstrap, topics)
    if args.dlq_command == "list":
        for d in letters:
            print(json.dumps(d.summary()) if args.json else
                  "  ".join(f"{k}={v}" for k, v in d.summary().items()), file=out)
        print(f"{len(letters)} dead letter(s) in {', '.join(topics) or 'no topic'}", file=sys.stderr)
        return 0
    if args.dlq_command == "show":
        found = [d for d in letters if d.event_id == args.event_id]
        if not found:
            print(f"no dead letter with event id {args.event_id}", file=sys.stderr)
            return 1
        for d in found:
            value = d.value.decode(errors="replace") if d.value is not None else None
            with contextlib.suppress(ValueError):  # not JSON: shown as the text it is
                value = json.loads(value) if value else value
            print(json.dumps({**d.summary(), "key": d.key.decode(errors="replace") if d.key else None,
                              "headers": {k: v.decode(errors="replace") for k, v in d.headers}, "value": value},
                             indent=2, ensure_ascii=False), file=out)
        return 0
    chosen = choose(letters, event_ids=args.event_id, event_type=args.type, everything=args.all)
    count = await replay(settings.kafka_bootstrap, chosen, client_id=f"{settings.service_name}-dlq-replay")
    print(f"replayed {count} dead letter(s)", file=sys.stderr)
    return 0 if chosen or args.all else 1
