"""Transactional outbox: an event is written in the same transaction as the state change,
and a relay publishes it to Kafka afterwards.

The relay claims unpublished rows with `FOR UPDATE SKIP LOCKED` (so several relays can
run), publishes them with an idempotent producer (`acks=all`), keyed by aggregate id,
and marks them published in the same transaction. A relay that dies between publishing
and committing makes the rows visible again: they are published a second time with the
same event id, and the consumers' inbox drops the duplicate (at-least-once + idempotent
consumers = effectively once).

The current trace context is stored with the event (its `ce_traceparent` header, `kontor.tracing`);
the relay publishes each such row in a span of that trace, so the consumer's span continues it.

Per-aggregate order across concurrent relays: a relay only publishes a row when no
earlier unpublished row of the same aggregate is held by somebody else; it leaves such
rows for a later pass instead of overtaking them.
"""
from __future__ import annotations

import asyncio
import datetime as dt
import time
from typing import Any, Protocol

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession

from kontor import faults, tracing
from kontor.contracts import Contract
from kontor.envelope import Envelope, encode_payload
from kontor.logging import get_logger
from kontor.metrics import WorkerMetrics
from kontor.topics import Topics

log = get_logger(__name__)


def define_outbox_table(metadata: sa.MetaData) -> sa.Table:
    return sa.Table(
        "outbox",
        metadata,
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("event_id", UUID(as_uuid=True), nullable=False, unique=True),
        sa.Column("topic", sa.Text, nullable=False),
        sa.Column("aggregate_id", sa.Text, nullable=False),
        sa.Column("event_type", sa.Text, nullable=False),
        sa.Column("headers", JSONB, nullable=False),
        sa.Column("payload", sa.LargeBinary, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("published_at", sa.DateTime(timezone=True)),
        sa.Index("ix_outbox_unpublished", "id", postgresql_where=sa.text("published_at IS NULL")),
        sa.Index("ix_outbox_aggregate_unpublished", "aggregate_id", "id",
                 postgresql_where=sa.text("published_at IS NULL")),
    )


class Outbox:
    """Writes events into the outbox table of the caller's transaction."""

    def __init__(self, table: sa.Table, topics: Topics) -> None:
        self.table = table
        self.topics = topics

    async def add(
        self,
        session: AsyncSession | AsyncConnection,
        event: Contract,
        *,
        time: dt.datetime,
        caused_by: Envelope | None = None,
    ) -> Envelope:
        envelope = Envelope.for_event(event, time=time, caused_by=caused_by)
        traced = tracing.trace_headers()
        if traced:
            envelope = envelope.with_extra(**traced)
        await session.execute(
            self.table.insert().values(
                event_id=envelope.id,
                topic=self.topics.name(event.topic),
                aggregate_id=envelope.subject,
                event_type=envelope.type,
                headers=[[k, v.decode()] for k, v in envelope.headers()],
                payload=encode_payload(event),
            )
        )
        return envelope


class Producer(Protocol):
    async def send(self, topic: str, value: bytes, key: bytes, headers: list) -> Any: ...


class OutboxRelay:
    def __init__(
        self,
        engine: AsyncEngine,
        table: sa.Table,
        producer: Producer,
        *,
        batch_size: int = 200,
        poll_interval_s: float = 0.1,
        name: str = "relay",
        metrics: WorkerMetrics | None = None,
    ) -> None:
        self.engine = engine
        self.table = table
        self.producer = producer
        self.batch_size = batch_size
        self.poll_interval_s = poll_interval_s
        self.name = name
        self.published_total = 0
        self.metrics = metrics or WorkerMetrics()
        t = table.name  # a name of our metadata, never input
        self._claim = sa.text(
            f"""
            WITH claimed AS (
                SELECT id, aggregate_id FROM {t}
                WHERE published_at IS NULL
                ORDER BY id
                LIMIT :limit
                FOR UPDATE SKIP LOCKED
            )
            SELECT o.id, o.topic, o.aggregate_id, o.event_type, o.headers, o.payload
            FROM {t} o JOIN claimed c ON c.id = o.id
            WHERE NOT EXISTS (
                SELECT 1 FROM {t} e
                WHERE e.aggregate_id = c.aggregate_id
                  AND e.published_at IS NULL
                  AND e.id < c.id
                  AND e.id NOT IN (SELECT id FROM claimed)
            )
            ORDER BY o.id
            """  # noqa: S608 - the name of our own outbox table, no input
        )

    async def publish_batch(self) -> int:
        """Claim, publish and mark one batch; returns how many events went out."""
        started = time.perf_counter()
        spans: list = []
        try:
            async with self.engine.begin() as conn:
                rows = (await conn.execute(self._claim, {"limit": self.batch_size})).all()
                if not rows:
                    return 0
                ready = list(rows)
                deliveries = []
                for row in ready:
                    headers = dict(row.headers)
                    span = tracing.start_publish_span(row.topic, row.event_type, headers)
                    if span is not None:  # the record carries the publish span's context, child of the stored one
                        spans.append(span)
                        headers.update(tracing.trace_headers(span))
                    deliveries.append(await self.producer.send(
                        row.topic,
                        value=bytes(row.payload),
                        key=row.aggregate_id.encode(),
                        headers=[(k, v.encode()) for k, v in headers.items()],
                    ))
                await asyncio.gather(*deliveries)  # every record acknowledged by all in-sync replicas
                await self._mark_published(conn, [row.id for row in ready])
        except Exception as exc:
            for span in spans:
                span.record_exception(exc)
            self.metrics.publish_errors.inc()
            raise
        finally:
            for span in spans:
                span.end()
        self.metrics.publish_seconds.observe(time.perf_counter() - started)
        for row in ready:
            self.metrics.published.labels(row.event_type).inc()
        self.published_total += len(ready)
        log.debug("outbox batch published", relay=self.name, count=len(ready))
        return len(ready)

    async def refresh_metrics(self) -> None:
        """The backlog gauges, as the database sees it now (the partial index of unpublished rows)."""
        t = self.table
        async with self.engine.connect() as conn:
            count, age = (await conn.execute(sa.select(
                sa.func.count(), sa.func.coalesce(
                    sa.func.extract("epoch", sa.func.now() - sa.func.min(t.c.created_at)), 0))
                .where(t.c.published_at.is_(None)))).one()
        self.metrics.outbox_backlog.set(count)
        self.metrics.outbox_oldest_age.set(max(0.0, float(age)))

    async def _mark_published(self, conn: AsyncConnection, ids: list[int]) -> None:
        await conn.execute(
            self.table.update().where(self.table.c.id.in_(ids)).values(published_at=sa.func.now())
        )

    async def run(self, stop: asyncio.Event) -> None:
        """Publish until `stop` is set; errors are logged and retried with backoff."""
        backoff = self.poll_interval_s
        log.info("outbox relay started", relay=self.name)
        while not stop.is_set():
            try:
                count = await self.publish_batch()
                backoff = self.poll_interval_s
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if faults.is_infrastructure_fault(exc):
                    log.warning("outbox relay waits for the database or the broker", relay=self.name,
                                error=repr(exc)[:300], retry_in_s=backoff)
                else:
                    log.exception("outbox relay batch failed; retrying", relay=self.name, retry_in_s=backoff)
                count = 0
                backoff = min(backoff * 2, 5.0)
            if count == 0:
                await faults.pause(stop, backoff)
        log.info("outbox relay stopped", relay=self.name, published=self.published_total)
