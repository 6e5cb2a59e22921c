"""Event worker of the clients service: outbox relay (consumers of invoice events follow)."""
from __future__ import annotations

from kontor.consumer import EventRouter
from kontor.db import create_engine, create_session_factory
from kontor.worker import Worker
from kontor_clients.adapters.orm import inbox, outbox
from kontor_clients.settings import ClientsSettings

GROUP = "kontor-clients"


def create_router() -> EventRouter:
    return EventRouter(GROUP)


def create_worker(settings: ClientsSettings) -> Worker:
    engine = create_engine(settings.database_url)
    return Worker(
        settings=settings,
        engine=engine,
        session_factory=create_session_factory(engine),
        outbox_table=outbox,
        inbox_table=inbox,
        routers=[create_router()],
    )
