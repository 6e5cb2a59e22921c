"""HTTP API of the invoicing service."""
from __future__ import annotations

from fastapi import FastAPI

from kontor.api import create_service_api
from kontor.clock import Clock
from kontor_invoicing.adapters.orm import outbox
from kontor_invoicing.settings import InvoicingSettings


def create_api_app(settings: InvoicingSettings, *, clock: Clock | None = None) -> FastAPI:
    return create_service_api(
        title="Kontor invoicing",
        description="Invoices of the cooperative: drafts, issue, numbering, documents, reminders, payments and cancellations.",
        settings=settings,
        outbox_table=outbox,
        routers=[],
        clock=clock,
    )


def app_from_env() -> FastAPI:
    """uvicorn factory: settings from the environment (KONTOR_INVOICING_*)."""
    return create_api_app(InvoicingSettings())
