"""The event backbone against a real Kafka broker and a real PostgreSQL: outbox, relay,
inbox, consumer offsets, retries, dead letters and per-aggregate order."""
from __future__ import annotations

import asyncio
import datetime as dt
from collections import defaultdict
from collections.abc import Sequence
from typing import ClassVar

import pytest
import sqlalchemy as sa

from kontor import topics as topic_names
from kontor.consumer import EventRouter
from kontor.contracts import Contract
from kontor.db import create_engine, create_session_factory, new_metadata
from kontor.devinfra.postgres import drop_database, ensure_database
from kontor.envelope import Envelope
from kontor.inbox import define_inbox_table
from kontor.kafka import create_producer
from kontor.outbox import Outbox, OutboxRelay, define_outbox_table
from kontor.settings import ServiceSettings
from kontor.testing import eventually, unique
from kontor.testing.kafka import produce, read_topic
from kontor.topics import Topics
from kontor.worker import BackgroundTask, Worker

pytestmark = pytest.mark.integration
NOW = dt.datetime(2026, 11, 22, 12, 0, tzinfo=dt.UTC)


class ProbeV1(Contract):
    """A test-only event: applying it inserts one row into `effects`."""

    event_type: ClassVar[str] = "kontor.test.probe.v1"
    topic: ClassVar[str] = topic_names.CLIENTS
    aggregate_field: ClassVar[str] = "aggregate"
    source: ClassVar[str] = "kontor/tests"

    aggregate: str
    seq: int
    fail: bool = False
    connection_losses: int = 0  # how many deliveries fail as if the database connection dropped
    hold: bool = False  # the handler waits for Backbone.release (a record in hand while the worker stops)


class Backbone:
    def __init__(self, infra, prefix: str, url: str) -> None:
        self.infra = infra
        self.topics = Topics(prefix)
        self.metadata = new_metadata()
        self.outbox_table = define_outbox_table(self.metadata)
        self.inbox_table = define_inbox_table(self.metadata)
        self.effects = sa.Table("effects", self.metadata,
                                sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
                                sa.Column("event_id", sa.Uuid, nullable=False),
                                sa.Column("aggregate", sa.Text, nullable=False),
                                sa.Column("seq", sa.Integer, nullable=False))
        self.engine = create_engine(url)
        self.sessions = create_session_factory(self.engine)
        self.outbox = Outbox(self.outbox_table, self.topics)
        self.settings = ServiceSettings(service_name="backbone", database_url=url,
                                        kafka_bootstrap=infra.kafka_bootstrap, topic_prefix=prefix,
                                        consumer_retry_backoff_s=0.01, relay_poll_interval_s=0.05)
        self.topic = self.topics.name(topic_names.CLIENTS)
        self.group = "kontor-backbone-test"
        self.deliveries: dict[int, int] = defaultdict(int)
        self.holding = asyncio.Event()
        self.release = asyncio.Event()

    def router(self) -> EventRouter:
        router = EventRouter(self.group)

        @router.on(ProbeV1)
        async def on_probe(event: ProbeV1, envelope: Envelope, session) -> None:
            self.deliveries[event.seq] += 1
            if event.fail:
                # an OSError, but not an outage: must be dead-lettered, not redelivered forever
                raise FileNotFoundError(f"boom for seq {event.seq}")
            if self.deliveries[event.seq] <= event.connection_losses:
                raise ConnectionResetError("connection to the database lost")
            if event.hold:
                self.holding.set()
                await self.release.wait()
            await session.execute(self.effects.insert().values(event_id=envelope.id, aggregate=event.aggregate,
                                                               seq=event.seq))

        return router

    def worker(self, *, relay: bool = True, background: Sequence[tuple[str, BackgroundTask]] = ()) -> Worker:
        engine = create_engine(self.settings.database_url)
        return Worker(settings=self.settings, engine=engine, session_factory=create_session_factory(engine),
                      outbox_table=self.outbox_table, inbox_table=self.inbox_table, routers=[self.router()],
                      relay=relay, background=background)

    async def emit(self, *events: ProbeV1) -> list[Envelope]:
        """Commit events through the outbox, as a state change would."""
        async with self.sessions.begin() as session:
            return [await self.outbox.add(session, e, time=NOW) for e in events]

    async def effects_rows(self):
        async with self.engine.connect() as conn:
            return (await conn.execute(sa.select(self.effects).order_by(self.effects.c.id))).all()

    async def unpublished(self) -> int:
        async with self.engine.connect() as conn:
            return (await conn.execute(sa.select(sa.func.count()).select_from(self.outbox_table)
                                       .where(self.outbox_table.c.published_at.is_(None)))).scalar_one()

    async def count(self, table: sa.Table) -> int:
        async with self.engine.connect() as conn:
            return (await conn.execute(sa.select(sa.func.count()).select_from(table))).scalar_one()


@pytest.fixture
async def backbone(infra, topic_prefix):
    name = unique("t_backbone_")
    await ensure_database(infra.postgres_admin_url, name)
    bb = Backbone(infra, topic_prefix, infra.database_url(name))
    async with bb.engine.begin() as conn:
        await conn.run_sync(bb.metadata.create_all)
    from kontor.kafka import ensure_topics

    await ensure_topics(infra.kafka_bootstrap, bb.topics.all())
    yield bb
    await bb.engine.dispose()
    await drop_database(infra.postgres_admin_url, name)


class CrashAfterPublish(OutboxRelay):
    """A relay that dies after Kafka acknowledged the records but before it marked them published."""

    async def _mark_published(self, conn, ids):
        raise RuntimeError("relay killed between publish and commit")


async def test_event_committed_while_relay_is_down_or_crashing_is_delivered_and_applied_once(backbone):
    [envelope] = await backbone.emit(ProbeV1(aggregate="a-1", seq=1))
    # The relay is down: the state change is committed, nothing is on the topic yet.
    assert await read_topic(backbone.infra.kafka_bootstrap, backbone.topic, timeout_s=1.5) == []

    producer = create_producer(backbone.infra.kafka_bootstrap, "crashing-relay")
    await producer.start()
    try:
        with pytest.raises(RuntimeError, match="killed"):
            await CrashAfterPublish(backbone.engine, backbone.outbox_table, producer).publish_batch()
    finally:
        await producer.stop()
    first = await read_topic(backbone.infra.kafka_bootstrap, backbone.topic, min_count=1)
    assert [r.headers["ce_id"] for r in first] == [str(envelope.id)]

    worker = backbone.worker()  # its relay publishes the row again, since it was never marked
    await worker.start()
    try:
        both = await read_topic(backbone.infra.kafka_bootstrap, backbone.topic, min_count=2)
        assert [r.headers["ce_id"] for r in both] == [str(envelope.id)] * 2
        dispatcher = worker.dispatchers[0]
        await eventually(lambda: dispatcher.outcomes["applied"] == 1 and dispatcher.outcomes["duplicate"] == 1,
                         what="one application and one skipped duplicate")
    finally:
        await worker.stop()
    rows = await backbone.effects_rows()
    assert [(r.event_id, r.seq) for r in rows] == [(envelope.id, 1)]
    assert await backbone.count(backbone.inbox_table) == 1
    assert await backbone.unpublished() == 0



async def test_the_same_event_delivered_twice_changes_nothing_the_second_time(backbone):
    event = ProbeV1(aggregate="dup", seq=7)
    envelope = Envelope.for_event(event, time=NOW)
    worker = backbone.worker(relay=False)
    await worker.start()
    try:
        for _ in range(2):
            await produce(backbone.infra.kafka_bootstrap, backbone.topic, event.model_dump_json().encode(),
                          key=b"dup", headers=envelope.headers())
        dispatcher = worker.dispatchers[0]
        await eventually(lambda: dispatcher.outcomes["duplicate"] == 1, what="duplicate skipped")
    finally:
        await worker.stop()
    assert [(r.event_id, r.seq) for r in await backbone.effects_rows()] == [(envelope.id, 7)]
    assert dict(dispatcher.outcomes) == {"applied": 1, "duplicate": 1}


async def test_poison_and_failing_messages_go_to_the_dead_letter_topic_and_the_partition_moves_on(backbone):
    key = b"same-partition"
    good = ProbeV1(aggregate="same-partition", seq=1)
    failing = ProbeV1(aggregate="same-partition", seq=2, fail=True)
    after = ProbeV1(aggregate="same-partition", seq=3)
    boot = backbone.infra.kafka_bootstrap
    worker = backbone.worker(relay=False)
    await worker.start()
    try:
        # 1. not JSON at all, with a type the consumer handles
        await produce(boot, backbone.topic, b"{not json", key=key,
                      headers=Envelope.for_event(good, time=NOW).headers())
        # 2. no CloudEvents headers
        await produce(boot, backbone.topic, good.model_dump_json().encode(), key=key)
        # 3. a valid event whose handler keeps failing
        await produce(boot, backbone.topic, failing.model_dump_json().encode(), key=key,
                      headers=Envelope.for_event(failing, time=NOW).headers())
        # 4. a good event behind them on the same partition
        after_env = Envelope.for_event(after, time=NOW)
        await produce(boot, backbone.topic, after.model_dump_json().encode(), key=key, headers=after_env.headers())
        await eventually(backbone.effects_rows, what="the event behind the poison messages applied")
    finally:
        await worker.stop()
    assert [(r.event_id, r.seq) for r in await backbone.effects_rows()] == [(after_env.id, 3)]

    dlq = backbone.topics.dlq(topic_names.CLIENTS, backbone.group)
    dead = await read_topic(boot, dlq, min_count=3)
    assert [d.headers["x-dlq-reason"] for d in dead] == [
        "payload does not match contract", "unreadable envelope", "handler failed"]
    assert dead[0].value == b"{not json"  # the original bytes are kept, nothing is lost
    assert "missing CloudEvents headers" in dead[1].headers["x-dlq-error"]
    assert dead[2].headers["x-dlq-error"] == "boom for seq 2"
    assert dead[2].headers["x-dlq-error-type"] == "FileNotFoundError"
    assert dead[2].headers["x-dlq-attempts"] == str(backbone.settings.consumer_max_attempts)
    assert {d.headers["x-dlq-original-topic"] for d in dead} == {backbone.topic}
    assert {d.headers["x-dlq-consumer-group"] for d in dead} == {backbone.group}
    assert all(d.key == "same-partition" for d in dead)


async def test_an_outage_during_the_handler_is_waited_out_instead_of_dead_lettering_the_record(backbone):
    """A record whose handler hit an outage waits (the partition with it) and is retried until
    the database answers, then applied exactly once; never dead-lettered."""
    # more losses than the bounded attempts of a failing handler: only waiting without limit survives them
    event = ProbeV1(aggregate="outage", seq=1, connection_losses=4)
    envelope = Envelope.for_event(event, time=NOW)
    worker = backbone.worker(relay=False)
    await worker.start()
    try:
        await produce(backbone.infra.kafka_bootstrap, backbone.topic, event.model_dump_json().encode(),
                      key=b"outage", headers=envelope.headers())
        await eventually(backbone.effects_rows, what="applied after the outage")
    finally:
        await worker.stop()
    assert backbone.deliveries[1] == 5, "four attempts that met the outage, then the one that applied it"
    assert [(r.event_id, r.seq) for r in await backbone.effects_rows()] == [(envelope.id, 1)]
    assert dict(worker.dispatchers[0].outcomes) == {"applied": 1}
    assert sum(worker.dispatchers[0].faults_seen.values()) == 4, "four outages waited out"
    dlq = backbone.topics.dlq(topic_names.CLIENTS, backbone.group)
    assert await read_topic(backbone.infra.kafka_bootstrap, dlq, timeout_s=1.5) == []


async def test_events_of_one_aggregate_arrive_in_order_with_concurrent_relays(backbone):
    # Few aggregates, interleaved: consecutive batches hold the next events of the same
    # aggregates, so concurrent relays contend for them (where a reordering would happen).
    aggregates = [f"agg-{i}" for i in range(6)]
    per_aggregate = 40
    # Interleave aggregates across many small transactions, as concurrent requests would.
    for seq in range(1, per_aggregate + 1):
        await backbone.emit(*(ProbeV1(aggregate=a, seq=seq) for a in aggregates))
    total = len(aggregates) * per_aggregate

    worker = backbone.worker(relay=False)
    await worker.start()
    producers = [create_producer(backbone.infra.kafka_bootstrap, f"relay-{i}") for i in range(3)]
    for p in producers:
        await p.start()
    relays = [OutboxRelay(backbone.engine, backbone.outbox_table, p, batch_size=7, name=f"relay-{i}")
              for i, p in enumerate(producers)]

    async def drain(relay: OutboxRelay) -> None:
        # A relay that gets nothing may just be waiting for another to finish an aggregate's
        # earlier event: it stops only when nothing at all is left to publish.
        while await backbone.unpublished() > 0:
            await relay.publish_batch()
            await asyncio.sleep(0)

    try:
        await asyncio.gather(*(drain(r) for r in relays))
        assert sum(r.published_total for r in relays) == total
        print("published per relay:", [r.published_total for r in relays])
        assert sum(r.published_total > 0 for r in relays) >= 2, "relays published side by side"
        records = await read_topic(backbone.infra.kafka_bootstrap, backbone.topic, min_count=total)
        await eventually(lambda: _count_at_least(backbone, total), timeout_s=60, what="all events applied")
    finally:
        for p in producers:
            await p.stop()
        await worker.stop()

    by_key: dict[str, list[int]] = defaultdict(list)
    for r in sorted(records, key=lambda r: (r.partition, r.offset)):
        by_key[r.key].append(ProbeV1.model_validate_json(r.value).seq)
    assert dict(by_key) == {a: list(range(1, per_aggregate + 1)) for a in aggregates}
    applied: dict[str, list[int]] = defaultdict(list)
    for row in await backbone.effects_rows():
        applied[row.aggregate].append(row.seq)
    assert dict(applied) == {a: list(range(1, per_aggregate + 1)) for a in aggregates}


async def test_a_stopping_worker_finishes_the_record_in_hand_commits_it_and_takes_no_other(backbone):
    """What SIGTERM does (Worker.serve calls stop): the subscriber stops fetching at once, even while a
    background loop is still in a long step; the record in hand is applied and its offset committed; the
    next record is left to whoever consumes next, and applied exactly once there."""
    from aiokafka.admin import AIOKafkaAdminClient

    step_started = asyncio.Event()

    async def long_step(stop: asyncio.Event) -> None:  # e.g. a billing batch being written
        step_started.set()
        await backbone.release.wait()

    worker = backbone.worker(relay=False, background=[("long-step", long_step)])
    await worker.start()
    held, after = ProbeV1(aggregate="drain", seq=1, hold=True), ProbeV1(aggregate="drain", seq=2)
    envelopes = [Envelope.for_event(e, time=NOW) for e in (held, after)]
    for event, envelope in zip((held, after), envelopes, strict=True):
        await produce(backbone.infra.kafka_bootstrap, backbone.topic, event.model_dump_json().encode(),
                      key=b"drain", headers=envelope.headers())
    await asyncio.wait_for(asyncio.gather(backbone.holding.wait(), step_started.wait()), timeout=60)

    stopping = asyncio.create_task(worker.stop())
    await eventually(lambda: not any(s.running for s in worker.broker.subscribers), timeout_s=5,
                     what="the subscriber stopped taking records while the background step still runs")
    assert not stopping.done(), "it waits for the record in hand and the step"
    backbone.release.set()
    await asyncio.wait_for(stopping, timeout=30)
    assert [(r.event_id, r.seq) for r in await backbone.effects_rows()] == [(envelopes[0].id, 1)]
    assert dict(backbone.deliveries) == {1: 1}, "the second record was not taken"

    admin = AIOKafkaAdminClient(bootstrap_servers=backbone.infra.kafka_bootstrap)
    await admin.start()
    try:
        committed = await admin.list_consumer_group_offsets(backbone.group)
    finally:
        await admin.close()
    # both records on one partition (one key), at offsets 0 and 1: its next to read is 1; the two others are empty
    assert sorted(o.offset for tp, o in committed.items() if tp.topic == backbone.topic) == [0, 0, 1], \
        "the held record committed, the next one not"

    backbone.release.set()
    again = backbone.worker(relay=False)
    await again.start()
    try:
        await eventually(lambda: _count_at_least(backbone, 2), what="the second record applied by the next worker")
    finally:
        await again.stop()
    assert [r.seq for r in await backbone.effects_rows()] == [1, 2]
    assert dict(backbone.deliveries) == {1: 1, 2: 1}, "the held record was not delivered again"


async def _count_at_least(backbone: Backbone, n: int) -> bool:
    return await backbone.count(backbone.effects) >= n


async def test_the_consumer_fetch_settings_reach_the_fetch_requests_of_every_consumer(backbone):
    backbone.settings = backbone.settings.model_copy(update={"consumer_fetch_min_bytes": 4321,
                                                              "consumer_fetch_max_wait_ms": 77})
    worker = backbone.worker()
    await worker.start()
    try:
        consumers = [subscriber.consumer for _, subscriber in worker._subscribers]
        assert consumers and None not in consumers
        # the fetcher puts these two into every FetchRequest it sends (aiokafka's Fetcher._fetch_requests_routine)
        assert {(c._fetcher._fetch_min_bytes, c._fetcher._fetch_max_wait_ms) for c in consumers} == {(4321, 77)}
        # and with them the consumer still gets its records
        [envelope] = await backbone.emit(ProbeV1(aggregate="f-1", seq=1))  # the worker's relay publishes it
        await eventually(lambda: worker.dispatchers[0].outcomes["applied"] == 1, what="the record applied")
    finally:
        await worker.stop()
    assert [r.event_id for r in await backbone.effects_rows()] == [envelope.id]
