"""The event worker of a service: FastStream subscribers, the outbox relay and background loops.

`Worker` is built by each service's `create_worker(settings)` factory. `start`/`stop`
let tests run it in-process; `serve` runs it until SIGINT/SIGTERM for the CLI.

Its metrics (`kontor.metrics.WorkerMetrics`: FastStream's consumer metrics, the relay's, the
consumers', outbox backlog and consumer lag refreshed at each scrape, and what the service adds)
are served with /healthz and /readyz on `WORKER_HTTP_PORT` at /metrics (`serve_http`).
"""
from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import sqlalchemy as sa
from faststream import AckPolicy
from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage
from faststream.kafka.prometheus import KafkaPrometheusMiddleware
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from kontor import faults
from kontor.consumer import Dispatcher, EventRouter
from kontor.db import ping
from kontor.kafka import create_producer, ensure_topics, servers
from kontor.logging import get_logger
from kontor.metrics import WorkerMetrics
from kontor.outbox import OutboxRelay
from kontor.settings import ServiceSettings
from kontor.topics import Topics

log = get_logger(__name__)

BackgroundTask = Callable[[asyncio.Event], Awaitable[None]]

# On SIGTERM the worker takes no new record and gives the one in hand, and the step each background loop
# is in, this long to finish (and commit); then they are cancelled (a record left uncommitted is redelivered).
# A Kubernetes terminationGracePeriodSeconds must exceed it (deploy/k8s/).
DRAIN_TIMEOUT_S = 15.0


def every(interval_s: float, run: Callable[[], Awaitable[object]]) -> BackgroundTask:
    """A background loop: `run` now, then every `interval_s` seconds until the worker stops."""

    async def loop(stop: asyncio.Event) -> None:
        while not stop.is_set():
            await run()
            await faults.pause(stop, interval_s)

    return loop


def while_busy(idle_s: float, run: Callable[[], Awaitable[object]]) -> BackgroundTask:
    """A background loop: `run` again at once while it did something (returned a truthy value),
    else after `idle_s` seconds, until the worker stops."""

    async def loop(stop: asyncio.Event) -> None:
        while not stop.is_set():
            if not await run():
                await faults.pause(stop, idle_s)

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
        self.metrics = WorkerMetrics()
        # FastStream's per-message "Received"/"Processed" lines at DEBUG: at INFO they cost more than
        # some handlers, and the dispatcher logs what matters (failures, dead letters, waits)
        self.broker = KafkaBroker(servers(settings.kafka_bootstrap), client_id=f"{settings.service_name}-consumer",
                                  log_level=logging.DEBUG, graceful_timeout=DRAIN_TIMEOUT_S,
                                  middlewares=[KafkaPrometheusMiddleware(
                                      registry=self.metrics.registry, app_name=f"kontor-{settings.service_name}")])
        self.dispatchers: list[Dispatcher] = []
        self._subscribers: list[tuple[str, Any]] = []  # (group, FastStream subscriber): for the consumer lag
        for router in self.routers:
            dispatcher = Dispatcher(
                router, session_factory, inbox_table, self.topics, self._publish_dead_letter,
                max_attempts=settings.consumer_max_attempts, retry_backoff_s=settings.consumer_retry_backoff_s,
                max_backoff_s=settings.infrastructure_max_backoff_s, metrics=self.metrics,
            )
            self.dispatchers.append(dispatcher)
            if router.topics:
                # one consumer per group for all its topics: no rebalancing between siblings
                self._subscribe(dispatcher, [self.topics.name(t) for t in router.topics], router.group)
        self.relay = OutboxRelay(
            engine, outbox_table, self.producer,
            batch_size=settings.relay_batch_size, poll_interval_s=settings.relay_poll_interval_s,
            name=f"{settings.service_name}-relay", metrics=self.metrics,
        ) if relay else None
        if self.relay:
            self.metrics.add_refresher("outbox_backlog", self.relay.refresh_metrics)
        if self.routers:
            self.metrics.add_refresher("consumer_lag", self.refresh_consumer_lag)
        self.background: list[tuple[str, BackgroundTask]] = list(background)
        if self.relay:
            self.background.insert(0, ("outbox-relay", self.relay.run))
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task] = []
        self.started = False

    def _subscribe(self, dispatcher: Dispatcher, topics: list[str], group: str) -> None:
        subscriber = self.broker.subscriber(
            *topics,
            group_id=group,
            ack_policy=AckPolicy.NACK_ON_ERROR,
            auto_offset_reset="earliest",
            fetch_min_bytes=self.settings.consumer_fetch_min_bytes,
            fetch_max_wait_ms=self.settings.consumer_fetch_max_wait_ms,
            decoder=_raw_decoder,
            title=f"{group}:{','.join(topics)}",
        )

        self._subscribers.append((group, subscriber))

        @subscriber
        async def on_record(message: KafkaMessage) -> None:
            record = message.raw_message
            if isinstance(record, tuple):  # only a batch subscriber receives a tuple of records
                raise TypeError(f"{group}: a batch of {len(record)} records where one was subscribed")
            await dispatcher.dispatch(record)

    async def _publish_dead_letter(self, topic, value, key, headers) -> None:
        await self.producer.send_and_wait(topic, value=value, key=key, headers=headers)

    async def start(self) -> None:
        """Connect (creating the topics), then run the subscribers and background loops. While the
        broker or the database cannot be reached it retries with backoff (and is not ready)."""
        self._stop.clear()
        backoff = faults.Backoff(0.5, self.settings.infrastructure_max_backoff_s)
        while True:
            try:
                await ping(self.engine)
                await ensure_topics(self.settings.kafka_bootstrap, self.topics.all(),
                                    self.settings.topic_partitions, self.settings.topic_replication,
                                    self.settings.topic_min_insync_replicas)
                await self.producer.start()
                await self.broker.start()
                break
            except Exception as exc:
                if not faults.is_infrastructure_fault(exc):
                    raise
                await self._reset_clients()
                delay = backoff.next_delay()
                log.warning("worker cannot reach the database or the broker yet; retrying", error=repr(exc)[:300],
                            retry_in_s=round(delay, 2), attempts=backoff.attempts)
                if await faults.pause(self._stop, delay):
                    return  # stopped before it ever connected
        for name, task in self.background:
            self._tasks.append(asyncio.create_task(self._supervise(name, task), name=name))
        self.started = True
        log.info("worker started", service=self.settings.service_name,
                 subscriptions=[f"{r.group}:{t}" for r in self.routers for t in r.topics],
                 background=[name for name, _ in self.background])

    async def _reset_clients(self) -> None:
        """Clients that failed to start are stopped and made anew (aiokafka's cannot be restarted)."""
        for closing in (self.broker.stop, self.producer.stop):
            try:
                await closing()
            except Exception as exc:  # noqa: BLE001 - they never started; nothing to keep but the reason
                log.info("client that failed to start not stopped cleanly", service=self.settings.service_name,
                         error=f"{type(exc).__name__}: {exc}")
        self.producer = create_producer(self.settings.kafka_bootstrap, f"{self.settings.service_name}-worker")
        if self.relay:
            self.relay.producer = self.producer

    async def readiness(self) -> dict[str, str]:
        """What the worker's /readyz says: started, the database and the cluster reachable."""
        from kontor.api import dependency_checks

        return {"started": "ok" if self.started else "connecting",
                **await dependency_checks(self.engine, self.settings.kafka_bootstrap)}

    async def _supervise(self, name: str, task: BackgroundTask) -> None:
        """Keep a background loop alive: a crash is logged and the loop restarted; while the
        database or the broker is down, with growing waits (and a warning, not a traceback)."""
        backoff = faults.Backoff(1.0, self.settings.infrastructure_max_backoff_s)
        while not self._stop.is_set():
            try:
                await task(self._stop)
                backoff.reset()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if faults.is_infrastructure_fault(exc):
                    delay = backoff.next_delay()
                    log.warning("background task waits for the infrastructure", task=name, error=repr(exc)[:300],
                                retry_in_s=round(delay, 2))
                else:
                    delay = 1.0
                    log.exception("background task crashed; restarting", task=name)
                await faults.pause(self._stop, delay)

    async def stop(self) -> None:
        """Drain, then close: the subscribers take no new record and finish the one in hand (its offset
        committed) while the background loops finish their current step, both at once and each within
        DRAIN_TIMEOUT_S; a long step (a billing batch, an e-mail) lets no further record in meanwhile."""
        self._stop.set()
        for dispatcher in self.dispatchers:
            dispatcher.stopping = True  # an infrastructure fault now ends the handler; the record is redelivered
        consuming = asyncio.create_task(self.broker.stop())
        if self._tasks:
            _, late = await asyncio.wait(self._tasks, timeout=DRAIN_TIMEOUT_S)
            for task in late:
                log.warning("background task did not finish its step in time; cancelled", task=task.get_name(),
                            timeout_s=DRAIN_TIMEOUT_S)
                task.cancel()
            await asyncio.gather(*late, return_exceptions=True)
        self._tasks.clear()
        await consuming
        await self.producer.stop()
        await self.engine.dispose()
        self.started = False
        log.info("worker stopped", service=self.settings.service_name)

    async def serve(self) -> None:
        """Until SIGINT/SIGTERM; with `WORKER_HTTP_PORT` set, /healthz, /readyz and /metrics on that port."""
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        port = self.settings.worker_http_port
        health = asyncio.create_task(self.serve_http(port)) if port else None
        starting = asyncio.create_task(self.start())
        try:
            await asyncio.wait([starting, asyncio.create_task(stop.wait())], return_when=asyncio.FIRST_COMPLETED)
            if starting.done():
                starting.result()  # a start that failed for a reason of its own ends the worker
                await stop.wait()
        finally:
            self._stop.set()
            await asyncio.gather(starting, return_exceptions=True)
            await self.stop()
            if health:
                health.cancel()
                await asyncio.gather(health, return_exceptions=True)

    async def serve_http(self, port: int) -> None:
        """/healthz, /readyz and /metrics on `port` until cancelled."""
        import uvicorn
        from fastapi import FastAPI
        from fastapi.responses import JSONResponse, Response

        from kontor.api import readiness_response

        app = FastAPI(title=f"Kontor {self.settings.service_name} worker", openapi_url=None)

        @app.get("/healthz")
        async def healthz() -> dict:
            return {"status": "ok", "service": self.settings.service_name, "role": "worker"}

        @app.get("/readyz")
        async def readyz() -> JSONResponse:
            return readiness_response(await self.readiness())

        @app.get("/metrics")
        async def prometheus_metrics() -> Response:
            return await self.metrics.response()

        self.health_app = app
        config = uvicorn.Config(app, host=self.settings.http_host, port=port,
                                log_config=None, access_log=False, lifespan="off")
        await uvicorn.Server(config).serve()

    async def refresh_consumer_lag(self) -> None:
        """`kontor_consumer_lag` of the partitions assigned to this worker's consumers: end offset
        minus committed offset (minus the first offset kept, when the group never committed)."""
        gauge = self.metrics.consumer_lag
        seen: set[tuple[str, ...]] = set()
        for group, subscriber in self._subscribers:
            consumer = getattr(subscriber, "consumer", None)
            if consumer is None:
                continue
            assigned = sorted(consumer.assignment(), key=lambda tp: (tp.topic, tp.partition))
            if not assigned:
                continue
            ends = await consumer.end_offsets(assigned)
            uncommitted = []
            for tp in assigned:
                committed = await consumer.committed(tp)
                if committed is None:
                    uncommitted.append(tp)
                else:
                    labels = (group, tp.topic, str(tp.partition))
                    gauge.labels(*labels).set(max(0, ends[tp] - committed))
                    seen.add(labels)
            if uncommitted:
                firsts = await consumer.beginning_offsets(uncommitted)
                for tp in uncommitted:
                    labels = (group, tp.topic, str(tp.partition))
                    gauge.labels(*labels).set(max(0, ends[tp] - firsts[tp]))
                    seen.add(labels)
        for gone in set(_label_values(gauge)) - seen:  # partitions no longer assigned here
            gauge.remove(*gone)


def _label_values(gauge: Any) -> list[tuple[str, ...]]:
    """The label values a labelled metric has children for."""
    return [tuple(sample.labels[n] for n in gauge._labelnames) for metric in gauge.collect()
            for sample in metric.samples]
