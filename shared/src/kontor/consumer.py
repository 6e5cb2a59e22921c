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
- a database or broker outage: raised, so the record is redelivered (not dead-lettered:
  the message is fine, the infrastructure is not).
"""
from __future__ import annotations

import asyncio
import socket
import traceback
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

import sqlalchemy as sa
import sqlalchemy.exc as sa_exc
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from kontor import inbox
from kontor.contracts import Contract
from kontor.envelope import Envelope, EnvelopeError
from kontor.logging import get_logger
from kontor.topics import Topics

log = get_logger(__name__)

C = TypeVar("C", bound=Contract)
Handler = Callable[[Any, Envelope, AsyncSession], Awaitable[None]]

# Errors that say the infrastructure is down, not that the message is bad: the record is
# redelivered until it is back. Deliberately narrow: any other error (an OSError such as
# FileNotFoundError included) is the handler's, retried a bounded number of times and then
# dead-lettered, so it can never block a partition for good.
TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    sa_exc.OperationalError,  # the DB-API's connection-level errors
    sa_exc.InterfaceError,
    sa_exc.DisconnectionError,
    ConnectionError,  # refused, reset, aborted, broken pipe
    TimeoutError,
    socket.gaierror,  # the database host cannot be resolved
)


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
    async def __call__(self, topic: str, value: bytes | None, key: bytes | None, headers: list[tuple[str, bytes]]) -> None: ...


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
    ) -> None:
        self.router = router
        self.session_factory = session_factory
        self.inbox_table = inbox_table
        self.topics = topics
        self.dead_letter = dead_letter
        self.max_attempts = max_attempts
        self.retry_backoff_s = retry_backoff_s
        self._logical = {topics.name(t): t for t in router.topics}
        self.outcomes: Counter[str] = Counter()  # applied / duplicate / skipped / dead_lettered

    async def dispatch(self, record: Record) -> DispatchResult:
        result = await self._dispatch(record)
        self.outcomes[result.outcome] += 1
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
        for attempt in range(1, self.max_attempts + 1):
            try:
                async with self.session_factory.begin() as session:
                    if not await inbox.claim(session, self.inbox_table, self.router.group, envelope.id, envelope.type):
                        bound.info("duplicate event skipped")
                        return DispatchResult("duplicate")
                    await handler(event, envelope, session)
                bound.info("event applied", attempt=attempt)
                return DispatchResult("applied")
            except TRANSIENT_ERRORS:
                bound.exception("infrastructure error; record will be redelivered")
                await asyncio.sleep(self.retry_backoff_s)
                raise
            except Exception as exc:  # noqa: BLE001 - any handler error counts as a failed attempt
                if attempt >= self.max_attempts:
                    bound.exception("handler failed; giving up", attempt=attempt)
                    return await self._dead_letter(record, exc, attempts=attempt, reason="handler failed")
                bound.warning("handler failed; retrying", attempt=attempt, error=repr(exc))
                await asyncio.sleep(self.retry_backoff_s * attempt)
        raise AssertionError("unreachable")

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
        log.error("record dead-lettered", dlq_topic=dlq, reason=reason, error=str(exc)[:500],
                  topic=record.topic, partition=record.partition, offset=record.offset)
        return DispatchResult("dead_lettered")
