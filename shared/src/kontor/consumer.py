"""Consumer wiring: from a Kafka record to a handler, exactly once, or to the dead-letter topic.

An `EventRouter` maps contract classes to handlers `on_<event>(event, envelope, session)`.
`attach_router` subscribes one FastStream subscriber per topic with
`AckPolicy.NACK_ON_ERROR`: the offset is committed only after `dispatch` returned,
that is after the handler's transaction (with its inbox row) committed.

What `dispatch` does with a record:
- a type this consumer does not handle: acknowledged and skipped;
- a record that cannot be read (headers, JSON, contract): straight to the DLQ;
- a handler error: retried up to `max_attempts` times, then to the DLQ with the
  error in headers, so the partition moves on;
- an infrastructure fault (database down, starting up, shutting down, restarting; connection
  lost; serialization failure or deadlock; broker or timeout: `kontor.faults`): retried without
  limit with backoff, never dead-lettered (the message is fine, the infrastructure is not); the
  partition waits, so nothing later on it overtakes. When the worker stops meanwhile, the error
  is raised and the record, not committed, is redelivered to whoever consumes next.

A record of a type the group handles is handled in a CONSUMER span that continues the trace of its
`ce_traceparent` header (`kontor.tracing`); outcomes, durations and dead letters are counted in the
worker's metrics (`kontor.metrics.WorkerMetrics`).
"""
from __future__ import annotations

import asyncio
import time
import traceback
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

import sqlalchemy as sa
from opentelemetry.trace import StatusCode
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from kontor import faults, inbox, tracing
from kontor.contracts import Contract
from kontor.envelope import Envelope, EnvelopeError
from kontor.logging import get_logger
from kontor.metrics import WorkerMetrics
from kontor.topics import Topics

log = get_logger(__name__)

C = TypeVar("C", bound=Contract)
Handler = Callable[[Any, Envelope, AsyncSession], Awaitable[None]]

class EventRouter:
    """The events one consumer group handles, by CloudEvents type."""

    def __init__(self, group: str) -> None:
        self.group = group
        self.handlers: dict[str, tuple[type[Contract], Handler]] = {}

    def on(self, contract: type[C]) -> Callable[[Handler], Handler]:
        def register(handler: Handler) -> Handler:
            if contract.event_type in self.handlers:
                raise ValueError(f"{contract.event_type} already has a handler in {self.group}")
            self.handlers[contract.event_type] = (contract, handler)
            return handler

        return register

    @property
    def topics(self) -> list[str]:
        return sorted({contract.topic for contract, _ in self.handlers.values()})

    @property
    def contracts(self) -> list[type[Contract]]:
        return [contract for contract, _ in self.handlers.values()]


class Record(Protocol):
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: Any


class DeadLetterPublisher(Protocol):
    async def __call__(self, topic: str, value: bytes | None, key: bytes | None,
                       headers: list[tuple[str, bytes]]) -> None: ...


@dataclass
class DispatchResult:
    outcome: str  # applied | duplicate | skipped | dead_lettered


class Dispatcher:
    def __init__(
        self,
        router: EventRouter,
        session_factory: async_sessionmaker[AsyncSession],
        inbox_table: sa.Table,
        topics: Topics,
        dead_letter: DeadLetterPublisher,
        *,
        max_attempts: int = 3,
        retry_backoff_s: float = 0.2,
        max_backoff_s: float = 30.0,
        metrics: WorkerMetrics | None = None,
    ) -> None:
        self.router = router
        self.metrics = metrics or WorkerMetrics()
        self.session_factory = session_factory
        self.inbox_table = inbox_table
        self.topics = topics
        self.dead_letter = dead_letter
        self.max_attempts = max_attempts
        self.retry_backoff_s = retry_backoff_s
        self.max_backoff_s = max_backoff_s
        self.stopping = False  # set when the worker stops: infrastructure faults are raised, not waited out
        self._logical = {topics.name(t): t for t in router.topics}
        self.outcomes: Counter[str] = Counter()  # applied / duplicate / skipped / dead_lettered
        self.faults_seen: Counter[str] = Counter()  # the infrastructure faults waited out, by SQLSTATE or kind

    async def dispatch(self, record: Record) -> DispatchResult:
        started = time.perf_counter()
        headers = _text_headers(record)
        event_type = headers.get("ce_type", "")
        group = self.router.group
        if event_type in self.router.handlers:
            with tracing.consume_span(record, headers, group=group, event_type=event_type,
                                      event_id=headers.get("ce_id", "")) as span:
                result = await self._dispatch(record)
                span.set_attribute("kontor.outcome", result.outcome)
                if result.outcome == "dead_lettered":
                    span.set_status(StatusCode.ERROR, "dead-lettered")
            self.metrics.handle_seconds.labels(group, event_type).observe(time.perf_counter() - started)
        else:
            result = await self._dispatch(record)
        self.outcomes[result.outcome] += 1
        self.metrics.consumed.labels(group, event_type if event_type in self.router.handlers else "other",
                                     result.outcome).inc()
        return result

    async def _dispatch(self, record: Record) -> DispatchResult:
        try:
            envelope = Envelope.from_headers(record.headers)
        except EnvelopeError as exc:
            return await self._dead_letter(record, exc, attempts=0, reason="unreadable envelope")
        entry = self.router.handlers.get(envelope.type)
        if entry is None:
            return DispatchResult("skipped")
        contract, handler = entry
        try:
            event = contract.model_validate_json(record.value or b"")
        except ValidationError as exc:
            return await self._dead_letter(record, exc, attempts=0, reason="payload does not match contract")

        bound = log.bind(event_type=envelope.type, event_id=str(envelope.id), consumer=self.router.group,
                         topic=record.topic, partition=record.partition, offset=record.offset)
        attempt = 0  # failures of the handler itself
        backoff = faults.Backoff(self.retry_backoff_s, self.max_backoff_s)
        while True:
            try:
                async with self.session_factory.begin() as session:
                    if not await inbox.claim(session, self.inbox_table, self.router.group, envelope.id, envelope.type):
                        bound.info("duplicate event skipped")  # rare: worth a line
                        return DispatchResult("duplicate")
                    await handler(event, envelope, session)
                if backoff.attempts:
                    bound.info("event applied after the infrastructure recovered", waits=backoff.attempts)
                bound.debug("event applied", attempt=attempt + 1)
                return DispatchResult("applied")
            except Exception as exc:
                if faults.is_infrastructure_fault(exc):
                    if self.stopping:
                        raise
                    delay = backoff.next_delay()
                    self.faults_seen[faults.sqlstate(exc) or type(exc).__name__] += 1
                    self.metrics.infrastructure_waits.labels(self.router.group).inc()
                    bound.warning("infrastructure fault; the record waits and is retried", error=repr(exc)[:300],
                                  sqlstate=faults.sqlstate(exc), retry_in_s=round(delay, 2), waits=backoff.attempts)
                    await asyncio.sleep(delay)
                    continue
                attempt += 1
                if attempt >= self.max_attempts:
                    bound.exception("handler failed; giving up", attempt=attempt)
                    return await self._dead_letter(record, exc, attempts=attempt, reason="handler failed")
                bound.warning("handler failed; retrying", attempt=attempt, error=repr(exc))
                await asyncio.sleep(self.retry_backoff_s * attempt)

    async def _dead_letter(self, record: Record, exc: BaseException, *, attempts: int, reason: str) -> DispatchResult:
        logical = self._logical.get(record.topic)
        dlq = self.topics.dlq(logical, self.router.group) if logical else f"{record.topic}.dlq.{self.router.group}"
        original = [(k, v) for k, v in (record.headers or ())]
        error_headers = {
            "x-dlq-reason": reason,
            "x-dlq-error-type": type(exc).__name__,
            "x-dlq-error": str(exc)[:4000],
            "x-dlq-traceback": "".join(traceback.format_exception(exc))[-8000:],
            "x-dlq-consumer-group": self.router.group,
            "x-dlq-original-topic": record.topic,
            "x-dlq-original-partition": str(record.partition),
            "x-dlq-original-offset": str(record.offset),
            "x-dlq-attempts": str(attempts),
        }
        headers = original + [(k, v.encode()) for k, v in error_headers.items()]
        # If this publish fails the exception propagates: the record is not committed, nothing is lost.
        await self.dead_letter(dlq, record.value, record.key, headers)
        self.metrics.dead_letters.labels(self.router.group, record.topic, reason).inc()
        log.error("record dead-lettered", dlq_topic=dlq, reason=reason, error=str(exc)[:500],
                  topic=record.topic, partition=record.partition, offset=record.offset)
        return DispatchResult("dead_lettered")


def _text_headers(record: Record) -> dict[str, str]:
    """The record's headers as text, leniently (the envelope's own reading is the strict one)."""
    found: dict[str, str] = {}
    for key, raw in record.headers or ():
        found[key] = raw.decode(errors="replace") if isinstance(raw, (bytes, bytearray)) else str(raw)
    return found
