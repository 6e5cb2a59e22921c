"""Event worker of the invoicing service: consumers and the outbox relay."""
from __future__ import annotations

from kontor.clock import Clock
from kontor.consumer import EventRouter
from kontor.db import create_engine, create_session_factory
from kontor.worker import Worker
from kontor_invoicing.adapters.orm import inbox, outbox
from kontor_invoicing.settings import InvoicingSettings

GROUP = "kontor-invoicing"


def create_router() -> EventRouter:
    return EventRouter(GROUP)


def create_worker(settings: InvoicingSettings, *, clock: Clock | None = None) -> Worker:
    engine = create_engine(settings.database_url)
    return Worker(
        settings=settings,
        engine=engine,
        session_factory=create_session_factory(engine),
        outbox_table=outbox,
        inbox_table=inbox,
        routers=[create_router()],
    )
