"""Event worker of the orders service: the client read model and the outbox relay."""
from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from kontor.clock import Clock
from kontor.consumer import EventRouter
from kontor.contracts.clients import ClientRegisteredV1, ClientStandingChangedV1, ClientUpdatedV1
from kontor.db import create_engine, create_session_factory
from kontor.envelope import Envelope
from kontor.logging import get_logger
from kontor.worker import Worker
from kontor_orders.adapters import repository
from kontor_orders.adapters.orm import inbox, outbox
from kontor_orders.settings import OrdersSettings

GROUP = "kontor-orders"
log = get_logger(__name__)


def create_router() -> EventRouter:
    router = EventRouter(GROUP)

    async def on_client_changed(event, envelope: Envelope, session: AsyncSession) -> None:
        applied = await repository.upsert_known_client(session, event.client)
        if not applied:
            log.info("older client snapshot ignored", client_id=str(event.client_id), version=event.client.version)

    # One handler for the three: each carries the full snapshot, versioned.
    router.on(ClientRegisteredV1)(on_client_changed)
    router.on(ClientUpdatedV1)(on_client_changed)
    router.on(ClientStandingChangedV1)(on_client_changed)
    return router


def create_worker(settings: OrdersSettings, *, clock: Clock | None = None) -> Worker:
    engine = create_engine(settings.database_url)
    return Worker(
        settings=settings,
        engine=engine,
        session_factory=create_session_factory(engine),
        outbox_table=outbox,
        inbox_table=inbox,
        routers=[create_router()],
    )
