"""The event worker of a service: FastStream subscribers, the outbox relay and background loops.

`Worker` is built by each service's `create_worker(settings)` factory. `start`/`stop`
let tests run it in-process; `serve` runs it until SIGINT/SIGTERM for the CLI.
"""
from __future__ import annotations

import asyncio
import signal
from collections.abc import Awaitable, Callable, Sequence

import sqlalchemy as sa
from faststream import AckPolicy
from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from kontor.consumer import Dispatcher, EventRouter
from kontor.kafka import create_producer, ensure_topics
from kontor.logging import get_logger
from kontor.outbox import OutboxRelay
from kontor.settings import ServiceSettings
from kontor.topics import Topics

log = get_logger(__name__)

BackgroundTask = Callable[[asyncio.Event], Awaitable[None]]


def every(interval_s: float, run: Callable[[], Awaitable[object]]) -> BackgroundTask:
    """A background loop: `run` now, then every `interval_s` seconds until the worker stops."""

    async def loop(stop: asyncio.Event) -> None:
        while not stop.is_set():
            await run()
            try:
                await asyncio.wait_for(stop.wait(), timeout=interval_s)
            except TimeoutError:
                pass

    return loop


async def _raw_decoder(message) -> bytes:
    # Leave the body as bytes: the dispatcher reads it, so an unreadable body is
    # dead-lettered instead of failing inside the framework and looping forever.
    return message.body


class Worker:
    def __init__(
        self,
        *,
        settings: ServiceSettings,
        engine: AsyncEngine,
        session_factory: async_sessionmaker[AsyncSession],
        outbox_table: sa.Table,
        inbox_table: sa.Table,
        routers: Sequence[EventRouter] = (),
        background: Sequence[tuple[str, BackgroundTask]] = (),
        relay: bool = True,
    ) -> None:
        self.settings = settings
        self.engine = engine
        self.session_factory = session_factory
        self.topics = Topics(settings.topic_prefix)
        self.routers = list(routers)
        self.producer = create_producer(settings.kafka_bootstrap, f"{settings.service_name}-worker")
        self.broker = KafkaBroker(settings.kafka_bootstrap, client_id=f"{settings.service_name}-consumer")
        self.dispatchers: list[Dispatcher] = []
        for router in self.routers:
            dispatcher = Dispatcher(
                router, session_factory, inbox_table, self.topics, self._publish_dead_letter,
                max_attempts=settings.consumer_max_attempts, retry_backoff_s=settings.consumer_retry_backoff_s,
            )
            self.dispatchers.append(dispatcher)
            if router.topics:
                # one consumer per group for all its topics: no rebalancing between siblings
                self._subscribe(dispatcher, [self.topics.name(t) for t in router.topics], router.group)
        self.relay = OutboxRelay(
            engine, outbox_table, self.producer,
            batch_size=settings.relay_batch_size, poll_interval_s=settings.relay_poll_interval_s,
            name=f"{settings.service_name}-relay",
        ) if relay else None
        self.background: list[tuple[str, BackgroundTask]] = list(background)
        if self.relay:
            self.background.insert(0, ("outbox-relay", self.relay.run))
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task] = []

    def _subscribe(self, dispatcher: Dispatcher, topics: list[str], group: str) -> None:
        subscriber = self.broker.subscriber(
            *topics,
            group_id=group,
            ack_policy=AckPolicy.NACK_ON_ERROR,
            auto_offset_reset="earliest",
            decoder=_raw_decoder,
            title=f"{group}:{','.join(topics)}",
        )

        @subscriber
        async def on_record(message: KafkaMessage) -> None:
            await dispatcher.dispatch(message.raw_message)

    async def _publish_dead_letter(self, topic, value, key, headers) -> None:
        await self.producer.send_and_wait(topic, value=value, key=key, headers=headers)

    async def start(self) -> None:
        await ensure_topics(self.settings.kafka_bootstrap, self.topics.all(),
                            self.settings.topic_partitions, self.settings.topic_replication)
        await self.producer.start()
        await self.broker.start()
        self._stop.clear()
        for name, task in self.background:
            self._tasks.append(asyncio.create_task(self._supervise(name, task), name=name))
        log.info("worker started", service=self.settings.service_name,
                 subscriptions=[f"{r.group}:{t}" for r in self.routers for t in r.topics],
                 background=[name for name, _ in self.background])

    async def _supervise(self, name: str, task: BackgroundTask) -> None:
        """Keep a background loop alive: a crash is logged and the loop restarted."""
        while not self._stop.is_set():
            try:
                await task(self._stop)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("background task crashed; restarting", task=name)
                await asyncio.sleep(1)

    async def stop(self) -> None:
        self._stop.set()
        for task in self._tasks:
            try:
                await asyncio.wait_for(task, timeout=10)
            except (TimeoutError, asyncio.CancelledError):
                task.cancel()
        self._tasks.clear()
        await self.broker.stop()
        await self.producer.stop()
        await self.engine.dispose()
        log.info("worker stopped", service=self.settings.service_name)

    async def serve(self) -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await self.start()
        try:
            await stop.wait()
        finally:
            await self.stop()
