"""Event worker of the orders service: the client read model (kontor.clients.v1), the
invoices issued per order (kontor.invoices.v1, for completion), the time-driven rules
in a background loop, and the outbox relay."""
from __future__ import annotations

from decimal import Decimal

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from kontor.clock import Clock, SystemClock, business_today
from kontor.consumer import EventRouter
from kontor.contracts.clients import ClientRegisteredV1, ClientStandingChangedV1, ClientUpdatedV1
from kontor.contracts.invoices import InvoiceCancelledV1, InvoiceIssuedV1
from kontor.db import create_engine, create_session_factory
from kontor.envelope import Envelope
from kontor.logging import get_logger
from kontor.outbox import Outbox
from kontor.topics import Topics
from kontor.worker import Worker, every
from kontor_orders.adapters import repository
from kontor_orders.adapters.orm import inbox, outbox
from kontor_orders.service_layer import services
from kontor_orders.settings import OrdersSettings

GROUP = "kontor-orders"
log = get_logger(__name__)


def create_router(deps: services.Deps | None = None) -> EventRouter:
    router = EventRouter(GROUP)
    deps = deps or services.Deps(Outbox(outbox, Topics("")), SystemClock(), OrdersSettings())

    async def on_client_changed(event, envelope: Envelope, session: AsyncSession) -> None:
        applied = await repository.upsert_known_client(session, event.client)
        if not applied:
            log.info("older client snapshot ignored", client_id=str(event.client_id), version=event.client.version)

    # One handler for the three: each carries the full snapshot, versioned.
    router.on(ClientRegisteredV1)(on_client_changed)
    router.on(ClientUpdatedV1)(on_client_changed)
    router.on(ClientStandingChangedV1)(on_client_changed)

    @router.on(InvoiceIssuedV1)
    async def on_invoice_issued(event: InvoiceIssuedV1, envelope: Envelope, session: AsyncSession) -> None:
        if event.invoice.kind == "invoice":
            if event.invoice.number is None:  # an issued invoice has its number; a draft's event would not
                raise ValueError(f"invoice {event.invoice_id} issued without a number")
            billed = event.invoice.net_total - sum((d.net_amount for d in event.invoice.deductions), Decimal(0))
            await services.record_issued_invoice(session, deps, event.order_id, event.invoice_id,
                                                 event.invoice.number, envelope, net_amount=billed)

    @router.on(InvoiceCancelledV1)
    async def on_invoice_cancelled(event: InvoiceCancelledV1, envelope: Envelope, session: AsyncSession) -> None:
        await services.record_cancelled_invoice(session, deps, event.order_id, event.invoice_id, event.number,
                                                envelope)

    return router


def order_rules_loop(session_factory: async_sessionmaker[AsyncSession], deps: services.Deps, interval_s: float):
    return every(interval_s, lambda: services.run_rules(session_factory, deps, as_of=business_today(deps.clock)))


def create_worker(settings: OrdersSettings, *, clock: Clock | None = None) -> Worker:
    engine = create_engine(settings.database_url)
    session_factory = create_session_factory(engine)
    deps = services.Deps(Outbox(outbox, Topics(settings.topic_prefix)), clock or SystemClock(), settings)
    background = [("order-rules", order_rules_loop(session_factory, deps, settings.order_run_interval_s))] \
        if settings.order_runs_enabled else []
    return Worker(
        settings=settings,
        engine=engine,
        session_factory=session_factory,
        outbox_table=outbox,
        inbox_table=inbox,
        routers=[create_router(deps)],
        background=background,
    )
