"""Event worker of the invoicing service: read models of clients and orders, the order's
planned invoices, cancellations; the billing run loop; the outbox relay."""
from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from kontor.clock import Clock, SystemClock, business_today
from kontor.consumer import EventRouter
from kontor.contracts.clients import ClientRegisteredV1, ClientStandingChangedV1, ClientUpdatedV1
from kontor.contracts.orders import (
    OrderActivatedV1,
    OrderCancelledV1,
    OrderCompletedV1,
    OrderUpdatedV1,
)
from kontor.db import create_engine, create_session_factory
from kontor.envelope import Envelope
from kontor.logging import get_logger
from kontor.outbox import Outbox
from kontor.topics import Topics
from kontor.worker import Worker, every
from kontor_invoicing.adapters.documents import DefaultRenderer
from kontor_invoicing.adapters.xrechnung_rules import create_validator
from kontor_invoicing.adapters.orm import inbox, outbox
from kontor_invoicing.service_layer import services
from kontor_invoicing.settings import InvoicingSettings

GROUP = "kontor-invoicing"
log = get_logger(__name__)


def create_router(deps: services.Deps | None = None) -> EventRouter:
    router = EventRouter(GROUP)
    if deps is None:
        settings = InvoicingSettings()
        deps = services.Deps(Outbox(outbox, Topics("")), SystemClock(), settings, DefaultRenderer(settings.seller))

    async def on_client_changed(event, envelope: Envelope, session: AsyncSession) -> None:
        await services.remember_client(session, event.client)

    for contract in (ClientRegisteredV1, ClientUpdatedV1, ClientStandingChangedV1):
        router.on(contract)(on_client_changed)

    @router.on(OrderActivatedV1)
    async def on_order_activated(event: OrderActivatedV1, envelope: Envelope, session: AsyncSession) -> None:
        await services.plan_order(session, event.order)

    async def on_order_changed(event, envelope: Envelope, session: AsyncSession) -> None:
        await services.remember_order(session, event.order)

    router.on(OrderUpdatedV1)(on_order_changed)
    router.on(OrderCompletedV1)(on_order_changed)

    @router.on(OrderCancelledV1)
    async def on_order_cancelled(event: OrderCancelledV1, envelope: Envelope, session: AsyncSession) -> None:
        await services.order_cancelled(session, deps, event.order, event.cancel_invoice_ids, event.reason, envelope)

    return router


def billing_loop(session_factory: async_sessionmaker[AsyncSession], deps: services.Deps, interval_s: float):
    return every(interval_s, lambda: services.billing_run(session_factory, deps, as_of=business_today(deps.clock)))


def create_worker(settings: InvoicingSettings, *, clock: Clock | None = None) -> Worker:
    engine = create_engine(settings.database_url)
    session_factory = create_session_factory(engine)
    deps = services.Deps(Outbox(outbox, Topics(settings.topic_prefix)), clock or SystemClock(), settings,
                         DefaultRenderer(settings.seller), create_validator(settings))
    background = [("billing-runs", billing_loop(session_factory, deps, settings.billing_run_interval_s))] \
        if settings.billing_runs_enabled else []
    return Worker(
        settings=settings,
        engine=engine,
        session_factory=session_factory,
        outbox_table=outbox,
        inbox_table=inbox,
        routers=[create_router(deps)],
        background=background,
    )
