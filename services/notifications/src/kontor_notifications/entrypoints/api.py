"""HTTP API of the notifications service."""
from __future__ import annotations

from fastapi import FastAPI

from kontor.api import create_service_api
from kontor.clock import Clock
from kontor_notifications.adapters.orm import outbox
from kontor_notifications.settings import NotificationsSettings


def create_api_app(settings: NotificationsSettings, *, clock: Clock | None = None) -> FastAPI:
    return create_service_api(
        title="Kontor notifications",
        description="E-mails of the order-to-invoice journey: templates, SMTP delivery and the delivery log.",
        settings=settings,
        outbox_table=outbox,
        routers=[],
        clock=clock,
    )


def app_from_env() -> FastAPI:
    """uvicorn factory: settings from the environment (KONTOR_NOTIFICATIONS_*)."""
    return create_api_app(NotificationsSettings())
