"""Event worker of the clients service: the receivables ledger from invoice events (each
one re-judges the client's standing), which member has which order for which client from
order events (who relies on a client's billing data), the daily standing run, and the outbox relay."""
from __future__ import annotations

import datetime as dt
from typing import Protocol

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from kontor.clock import BERLIN, Clock, SystemClock, business_today
from kontor.consumer import EventRouter
from kontor.contracts.invoices import InvoiceCancelledV1, InvoiceIssuedV1, InvoicePaidV1, InvoicePaymentRecordedV1
from kontor.contracts.orders import (
    OrderActivatedV1,
    OrderApprovedV1,
    OrderCancellationRequestedV1,
    OrderCancelledV1,
    OrderChangesRequestedV1,
    OrderCompletedV1,
    OrderConfirmedV1,
    OrderOfferExpiringV1,
    OrderPriceChangedV1,
    OrderRejectedV1,
    OrderRenewalNoticeDueV1,
    OrderSentForConfirmationV1,
    OrderSubmittedV1,
    OrderUpdatedV1,
    OrderV1,
)
from kontor.db import create_engine, create_session_factory
from kontor.envelope import Envelope
from kontor.logging import get_logger
from kontor.outbox import Outbox
from kontor.topics import Topics
from kontor.worker import Worker, every
from kontor_clients.adapters.orm import inbox, outbox
from kontor_clients.service_layer import services
from kontor_clients.settings import ClientsSettings

GROUP = "kontor-clients"
# Every order event carries the whole order (member, client, status, version): each one updates
# which member has which order for which client, and whether it still counts.
ORDER_EVENTS = (OrderSubmittedV1, OrderApprovedV1, OrderSentForConfirmationV1, OrderOfferExpiringV1,
                OrderConfirmedV1, OrderChangesRequestedV1, OrderRejectedV1, OrderActivatedV1, OrderUpdatedV1,
                OrderCancellationRequestedV1, OrderCancelledV1, OrderCompletedV1, OrderPriceChangedV1,
                OrderRenewalNoticeDueV1)
log = get_logger(__name__)


class CarriesOrder(Protocol):
    """Any order event: each carries the whole order."""

    @property
    def order(self) -> OrderV1: ...


def create_router(*, events: Outbox | None = None, clock: Clock | None = None) -> EventRouter:
    router = EventRouter(GROUP)
    events = events or Outbox(outbox, Topics(""))
    clock = clock or SystemClock()

    @router.on(InvoiceIssuedV1)
    async def on_invoice_issued(event: InvoiceIssuedV1, envelope: Envelope, session: AsyncSession) -> None:
        await services.record_invoice_issued(session, events, clock, event, envelope)

    @router.on(InvoicePaymentRecordedV1)
    async def on_invoice_payment_recorded(event: InvoicePaymentRecordedV1, envelope: Envelope,
                                          session: AsyncSession) -> None:
        await services.record_payment(session, events, clock, event, envelope)

    @router.on(InvoicePaidV1)
    async def on_invoice_paid(event: InvoicePaidV1, envelope: Envelope, session: AsyncSession) -> None:
        await services.record_paid(session, events, clock, event, envelope)

    @router.on(InvoiceCancelledV1)
    async def on_invoice_cancelled(event: InvoiceCancelledV1, envelope: Envelope, session: AsyncSession) -> None:
        await services.record_cancelled(session, events, clock, event, envelope)

    async def on_order_event(event: CarriesOrder, envelope: Envelope, session: AsyncSession) -> None:
        await services.record_order(session, event.order)

    for contract in ORDER_EVENTS:
        router.on(contract)(on_order_event)

    return router


def daily_standing_run(settings: ClientsSettings, session_factory: async_sessionmaker[AsyncSession], events: Outbox,
                       clock: Clock):
    """Once a day, after `standing_run_hour` (Berlin), run the debt rule as of that day.
    Every replica checks; the unique scheduled run of the day makes exactly one of them run it."""

    async def check() -> None:
        if clock.now().astimezone(BERLIN).time() >= dt.time(settings.standing_run_hour):
            report = await services.run_standing(session_factory, events, clock, as_of=business_today(clock),
                                                 trigger="scheduled")
            if report:
                log.info("daily standing run done", as_of=report.as_of.isoformat(), evaluated=report.evaluated,
                         restricted=report.restricted, lifted=report.lifted)

    return every(settings.standing_run_check_interval_s, check)


def create_worker(settings: ClientsSettings, *, clock: Clock | None = None) -> Worker:
    clock = clock or SystemClock()
    engine = create_engine(settings.database_url)
    session_factory = create_session_factory(engine)
    events = Outbox(outbox, Topics(settings.topic_prefix))
    background = [("daily-standing-run", daily_standing_run(settings, session_factory, events, clock))] \
        if settings.standing_run_enabled else []
    return Worker(
        settings=settings,
        engine=engine,
        session_factory=session_factory,
        outbox_table=outbox,
        inbox_table=inbox,
        routers=[create_router(events=events, clock=clock)],
        background=background,
    )
