"""Event worker of the notifications service: turns order, invoice and client events into
e-mails, delivers them over SMTP (retrying with backoff), and relays `email.*` events."""
from __future__ import annotations

from dataclasses import replace

from sqlalchemy.ext.asyncio import AsyncSession

from kontor.clock import Clock, SystemClock
from kontor.consumer import EventRouter
from kontor.contracts import orders as order_events
from kontor.contracts.clients import ClientStandingChangedV1
from kontor.contracts.invoices import InvoiceCancelledV1, InvoiceDraftCreatedV1, InvoiceIssuedV1, InvoiceReminderSentV1
from kontor.db import create_engine, create_session_factory
from kontor.envelope import Envelope
from kontor.metrics import EmailGauges
from kontor.outbox import Outbox
from kontor.topics import Topics
from kontor.worker import BackgroundTask, Worker
from kontor_notifications.adapters import repository
from kontor_notifications.adapters.documents import DocumentFetcher
from kontor_notifications.adapters.orm import inbox, outbox
from kontor_notifications.adapters.smtp import Mailer
from kontor_notifications.domain import model
from kontor_notifications.service_layer import services
from kontor_notifications.service_layer.delivery import DeliveryLoop
from kontor_notifications.settings import NotificationsSettings

GROUP = "kontor-notifications"
# every order event keeps the read model current (open orders per client); some also send e-mails
ORDER_EVENTS = (order_events.OrderSubmittedV1, order_events.OrderApprovedV1, order_events.OrderSentForConfirmationV1,
                order_events.OrderOfferExpiringV1, order_events.OrderConfirmedV1,
                order_events.OrderChangesRequestedV1, order_events.OrderRejectedV1, order_events.OrderActivatedV1,
                order_events.OrderUpdatedV1, order_events.OrderCancellationRequestedV1,
                order_events.OrderCancelledV1, order_events.OrderCompletedV1, order_events.OrderRenewalNoticeDueV1)
INVOICE_EVENTS = (InvoiceDraftCreatedV1, InvoiceIssuedV1, InvoiceReminderSentV1, InvoiceCancelledV1)


def create_router(deps: services.Deps | None = None) -> EventRouter:
    router = EventRouter(GROUP)
    if deps is None:  # to describe the subscriptions (AsyncAPI), not to handle events
        deps = services.Deps(NotificationsSettings(), SystemClock(), Outbox(outbox, Topics("")))

    async def on_order_event(event, envelope: Envelope, session: AsyncSession) -> None:
        await services.on_order_event(session, deps, event.model_dump(mode="json"), envelope)

    async def on_invoice_event(event, envelope: Envelope, session: AsyncSession) -> None:
        await services.on_invoice_event(session, deps, event.model_dump(mode="json"), envelope)

    @router.on(ClientStandingChangedV1)
    async def on_client_standing_changed(event: ClientStandingChangedV1, envelope: Envelope,
                                         session: AsyncSession) -> None:
        await services.on_standing_changed(session, deps, event.model_dump(mode="json"), envelope)

    for contract in ORDER_EVENTS:
        router.on(contract)(on_order_event)
    for invoice_contract in INVOICE_EVENTS:
        router.on(invoice_contract)(on_invoice_event)
    return router


def delivery(session_factory, deps: services.Deps) -> BackgroundTask:
    """The delivery loop; it owns the HTTP client that fetches documents and the SMTP
    connections, closed when it stops."""

    async def loop(stop) -> None:
        fetcher = DocumentFetcher(deps.settings)
        mailer = Mailer(deps.settings)
        try:
            sending = replace(deps, mailer=mailer, documents=fetcher)
            await DeliveryLoop(session_factory, sending).run(stop)
        finally:
            await mailer.close()
            await fetcher.close()

    return loop


def database_pool_size(settings: NotificationsSettings) -> int:
    """Each e-mail in flight holds a connection (its claim stays locked until the outcome is
    recorded); the consumers and the outbox relay need theirs besides."""
    return max(10, settings.delivery_concurrency + 4) if settings.delivery_enabled else 10


def create_worker(settings: NotificationsSettings, *, clock: Clock | None = None) -> Worker:
    engine = create_engine(settings.database_url, pool_size=database_pool_size(settings))
    session_factory = create_session_factory(engine)
    deps = services.Deps(settings=settings, clock=clock or SystemClock(),
                         outbox=Outbox(outbox, Topics(settings.topic_prefix)))
    background = [("email-delivery", delivery(session_factory, deps))] if settings.delivery_enabled else []
    worker = Worker(
        settings=settings,
        engine=engine,
        session_factory=session_factory,
        outbox_table=outbox,
        inbox_table=inbox,
        routers=[create_router(deps)],
        background=background,
    )
    gauges = EmailGauges(worker.metrics.registry)

    async def refresh_email_gauges() -> None:
        now = deps.clock.now()
        async with session_factory() as session:
            by_status, due, oldest = await repository.delivery_counts(session, now)
        for status in (model.PENDING, model.SENT, model.FAILED):
            gauges.by_status.labels(status).set(by_status.get(status, 0))
        gauges.due.set(due)
        gauges.oldest_due_age.set(max(0.0, (now - oldest).total_seconds()) if oldest else 0)

    worker.metrics.add_refresher("emails", refresh_email_gauges)
    return worker
