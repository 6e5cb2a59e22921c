"""Event worker of the invoicing service: read models of clients and orders, the order's
planned invoices, cancellations; the billing runs (jobs) and the issuing pipeline with its
rendering processes; the schedule that starts a run as of today; the outbox relay."""
from __future__ import annotations

import os
import socket
import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from kontor.clock import Clock, SystemClock
from kontor.consumer import EventRouter
from kontor.contracts.clients import ClientRegisteredV1, ClientStandingChangedV1, ClientUpdatedV1
from kontor.contracts.orders import (
    OrderActivatedV1,
    OrderCancelledV1,
    OrderCompletedV1,
    OrderPriceChangedV1,
    OrderUpdatedV1,
)
from kontor.db import create_engine, create_session_factory
from kontor.envelope import Envelope
from kontor.logging import get_logger
from kontor.metrics import BillingRunGauges
from kontor.outbox import Outbox
from kontor.topics import Topics
from kontor.worker import BackgroundTask, Worker, every, while_busy
from kontor_invoicing.adapters.orm import inbox, outbox
from kontor_invoicing.adapters.rendering import RenderPool
from kontor_invoicing.adapters.xrechnung_rules import create_validator
from kontor_invoicing.service_layer import runs, services
from kontor_invoicing.service_layer.issuing import IssuingPipeline
from kontor_invoicing.settings import InvoicingSettings

GROUP = "kontor-invoicing"
log = get_logger(__name__)


def create_router(deps: services.Deps | None = None) -> EventRouter:
    router = EventRouter(GROUP)
    if deps is None:
        settings = InvoicingSettings()
        deps = services.Deps(Outbox(outbox, Topics("")), SystemClock(), settings)

    async def on_client_changed(event, envelope: Envelope, session: AsyncSession) -> None:
        await services.remember_client(session, event.client)

    for contract in (ClientRegisteredV1, ClientUpdatedV1, ClientStandingChangedV1):
        router.on(contract)(on_client_changed)

    @router.on(OrderActivatedV1)
    async def on_order_activated(event: OrderActivatedV1, envelope: Envelope, session: AsyncSession) -> None:
        await services.plan_order(session, event.order)

    async def on_order_changed(event, envelope: Envelope, session: AsyncSession) -> None:
        await services.remember_order(session, event.order)

    @router.on(OrderUpdatedV1)
    async def on_order_updated(event: OrderUpdatedV1, envelope: Envelope, session: AsyncSession) -> None:
        if any(change.get("field") == "contract" for change in event.changes):  # renewed, paused, resumed
            await services.follow_schedule(session, event.order)
        else:
            await services.remember_order(session, event.order)

    router.on(OrderCompletedV1)(on_order_changed)

    @router.on(OrderPriceChangedV1)
    async def on_order_price_changed(event: OrderPriceChangedV1, envelope: Envelope, session: AsyncSession) -> None:
        await services.replan_order(session, event.order, event.replanned)

    @router.on(OrderCancelledV1)
    async def on_order_cancelled(event: OrderCancelledV1, envelope: Envelope, session: AsyncSession) -> None:
        await services.order_cancelled(session, deps, event.order, event.cancel_invoice_ids, event.reason, envelope,
                                       actor=event.actor)

    return router


def worker_name() -> str:
    return f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


def create_worker(settings: InvoicingSettings, *, clock: Clock | None = None) -> Worker:
    # each render task holds a connection while it renders (the invoice stays locked until stored)
    engine = create_engine(settings.database_url, pool_size=max(10, settings.render_processes + 8))
    session_factory = create_session_factory(engine)
    deps = services.Deps(Outbox(outbox, Topics(settings.topic_prefix)), clock or SystemClock(), settings)
    create_validator(settings)  # a configured rules directory without the rules stops the worker here
    name = worker_name()
    pool = RenderPool(settings.seller, settings.xrechnung_rules_dir, processes=settings.render_processes)
    pipeline = IssuingPipeline(session_factory, deps, pool, worker=name)
    background: list[tuple[str, BackgroundTask]] = [
        ("billing-runs", while_busy(settings.runs_poll_interval_s,
                                    lambda: runs.work(session_factory, deps, worker=name))),
        ("issuing", pipeline.run)]
    if settings.billing_runs_enabled:
        background.append(("billing-schedule", every(settings.billing_run_interval_s,
                                                     lambda: runs.schedule_today(session_factory, deps))))
    worker = Worker(
        settings=settings,
        engine=engine,
        session_factory=session_factory,
        outbox_table=outbox,
        inbox_table=inbox,
        routers=[create_router(deps)],
        background=background,
    )
    gauges = BillingRunGauges(worker.metrics.registry)
    worker.metrics.add_refresher("billing_runs", lambda: runs.refresh_gauges(session_factory, deps, gauges))
    return worker
