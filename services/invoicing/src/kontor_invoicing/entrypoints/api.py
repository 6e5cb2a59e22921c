"""HTTP API of the invoicing service."""
from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from typing import Annotated, Literal

from fastapi import APIRouter, FastAPI, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from kontor.api import Ctx, ServiceContext, create_service_api, file_response
from kontor.auth import Advisor, CurrentPrincipal
from kontor.clock import Clock, business_today
from kontor.contracts.invoices import InvoiceV1
from kontor_invoicing.adapters import repository
from kontor_invoicing.adapters.documents import DefaultRenderer
from kontor_invoicing.adapters.xrechnung_rules import create_validator
from kontor_invoicing.adapters.orm import outbox
from kontor_invoicing.domain import model
from kontor_invoicing.service_layer import services
from kontor_invoicing.settings import InvoicingSettings


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class MessageIn(_In):
    message: str = Field(min_length=1, max_length=2000)


class ObjectionIn(_In):
    objection: str = Field(min_length=1, max_length=2000)


class ReasonIn(_In):
    reason: str = Field(min_length=1, max_length=2000)


class LineIn(_In):
    description: str = Field(min_length=1, max_length=1000)
    quantity: Decimal = Field(gt=0)
    unit: Literal["day", "hour", "lump_sum", "week", "month", "other"]
    unit_price: Decimal = Field(gt=0)


class AdjustIn(_In):
    lines: list[LineIn] | None = None
    project_name: str | None = Field(default=None, max_length=80)
    description: str | None = Field(default=None, max_length=5000)
    invoice_date: dt.date | None = None
    due_in_days: int | None = Field(default=None, ge=0, le=120)


class PaymentIn(_In):
    amount: Decimal = Field(gt=0, description="in the invoice's currency")
    received_on: dt.date
    payment_id: uuid.UUID | None = Field(default=None, description="repeat it to make a retry harmless")


class RunIn(_In):
    as_of: dt.date | None = None


class RunOut(BaseModel):
    as_of: dt.date
    drafted: int
    issued: int
    reminded: int
    elapsed_s: float


class PaymentOut(BaseModel):
    payment_id: uuid.UUID
    amount: Decimal
    received_on: dt.date


class InvoiceOut(InvoiceV1):
    schedule_kind: str
    paid_total: Decimal
    open_amount: Decimal
    overpaid_amount: Decimal
    refund_due: Decimal
    payments: tuple[PaymentOut, ...] = ()
    change_request: str | None = None
    dispute: str | None = None
    validation_errors: tuple[str, ...] = ()
    adjustments: tuple[dict, ...] = ()
    cancelled_by: uuid.UUID | None = None


def invoice_out(inv: model.Invoice, base_url: str) -> InvoiceOut:
    return InvoiceOut(
        **services.published(inv, base_url).model_dump(), schedule_kind=inv.schedule_kind, paid_total=inv.paid_total,
        open_amount=inv.open_amount, overpaid_amount=inv.overpaid_amount, refund_due=inv.refund_due,
        payments=tuple(PaymentOut(payment_id=p.payment_id, amount=p.amount, received_on=p.received_on)
                       for p in inv.payments),
        change_request=inv.change_request, dispute=inv.dispute, validation_errors=inv.validation_errors,
        adjustments=inv.adjustments, cancelled_by=inv.cancelled_by)


def deps(ctx: ServiceContext, request: Request) -> services.Deps:
    return services.Deps(ctx.outbox, ctx.clock, ctx.settings, request.app.state.renderer,
                         request.app.state.validator)


router = APIRouter(prefix="/invoices", tags=["invoices"])
Status = Literal["draft", "waiting_for_adjustment", "invoiced", "disputed", "cancelled", "paid", "discarded"]


@router.get("", response_model=list[InvoiceOut], summary="Invoices by status: a member's own, all for advisors")
async def list_invoices(ctx: Ctx, principal: CurrentPrincipal,
                        status_: Annotated[list[Status] | None, Query(alias="status")] = None,
                        order_id: uuid.UUID | None = None,
                        limit: Annotated[int, Query(ge=1, le=500)] = 100,
                        offset: Annotated[int, Query(ge=0)] = 0) -> list[InvoiceOut]:
    async with ctx.session_factory() as session:
        found = await repository.list_invoices(session, member_id=None if principal.is_advisor else principal.sub,
                                               statuses=status_, order_id=order_id, limit=limit, offset=offset)
    return [invoice_out(i, ctx.settings.public_base_url) for i in found]


@router.get("/{invoice_id}", response_model=InvoiceOut, summary="One invoice")
async def get_invoice(invoice_id: uuid.UUID, ctx: Ctx, principal: CurrentPrincipal) -> InvoiceOut:
    async with ctx.session_factory() as session:
        return invoice_out(await services.visible(session, principal, invoice_id), ctx.settings.public_base_url)


async def _document(ctx, principal, invoice_id: uuid.UUID, kind: str) -> Response:
    async with ctx.session_factory() as session:
        await services.visible(session, principal, invoice_id)
        row = await repository.get_document(session, invoice_id, kind)
    return file_response(row.content, media_type=row.media_type, filename=row.filename, sha256=row.sha256,
                         disposition="inline")


@router.get("/{invoice_id}/pdf", response_class=Response, summary="The issued invoice as PDF")
async def get_pdf(invoice_id: uuid.UUID, ctx: Ctx, principal: CurrentPrincipal) -> Response:
    return await _document(ctx, principal, invoice_id, "pdf")


@router.get("/{invoice_id}/xrechnung.xml", response_class=Response, summary="The issued invoice as X-Rechnung (CII)")
async def get_xml(invoice_id: uuid.UUID, ctx: Ctx, principal: CurrentPrincipal) -> Response:
    return await _document(ctx, principal, invoice_id, "xrechnung")


@router.post("/{invoice_id}/change-request", response_model=InvoiceOut,
             summary="Member: ask the cooperative to adjust a draft")
async def change_request(invoice_id: uuid.UUID, body: MessageIn, ctx: Ctx, principal: CurrentPrincipal,
                         request: Request) -> InvoiceOut:
    async with ctx.begin() as session:
        return invoice_out(await services.request_change(session, deps(ctx, request), principal, invoice_id,
                                                         body.message), ctx.settings.public_base_url)


@router.patch("/{invoice_id}", response_model=InvoiceOut, summary="Advisor: adjust a draft or waiting invoice")
async def adjust(invoice_id: uuid.UUID, body: AdjustIn, ctx: Ctx, principal: CurrentPrincipal,
                 request: Request) -> InvoiceOut:
    changes = body.model_dump(exclude_unset=True)
    async with ctx.begin() as session:
        return invoice_out(await services.adjust(session, deps(ctx, request), principal, invoice_id, changes), ctx.settings.public_base_url)


@router.post("/{invoice_id}/issue", response_model=InvoiceOut,
             summary="Issue now: the member's \"save and send\" on a draft, or an advisor after adjusting")
async def issue(invoice_id: uuid.UUID, ctx: Ctx, principal: CurrentPrincipal, request: Request) -> InvoiceOut:
    async with ctx.begin() as session:
        return invoice_out(await services.issue_now(session, deps(ctx, request), principal, invoice_id), ctx.settings.public_base_url)


@router.post("/{invoice_id}/payments", response_model=InvoiceOut, summary="Advisor: record a (partial) payment")
async def payment(invoice_id: uuid.UUID, body: PaymentIn, ctx: Ctx, principal: CurrentPrincipal,
                  request: Request) -> InvoiceOut:
    async with ctx.begin() as session:
        return invoice_out(await services.record_payment(session, deps(ctx, request), principal, invoice_id,
                                                         amount=body.amount, received_on=body.received_on,
                                                         payment_id=body.payment_id), ctx.settings.public_base_url)


@router.post("/{invoice_id}/dispute", response_model=InvoiceOut, summary="Advisor: the client objected")
async def dispute(invoice_id: uuid.UUID, body: ObjectionIn, ctx: Ctx, principal: CurrentPrincipal,
                  request: Request) -> InvoiceOut:
    async with ctx.begin() as session:
        return invoice_out(await services.dispute(session, deps(ctx, request), principal, invoice_id, body.objection), ctx.settings.public_base_url)


@router.post("/{invoice_id}/resolve-dispute", response_model=InvoiceOut, summary="Advisor: back to invoiced")
async def resolve(invoice_id: uuid.UUID, ctx: Ctx, principal: CurrentPrincipal, request: Request) -> InvoiceOut:
    async with ctx.begin() as session:
        return invoice_out(await services.resolve_dispute(session, deps(ctx, request), principal, invoice_id), ctx.settings.public_base_url)


@router.post("/{invoice_id}/cancel", response_model=InvoiceOut,
             summary="Advisor: cancel with a cancellation invoice (own number, refers to the original)")
async def cancel(invoice_id: uuid.UUID, body: ReasonIn, ctx: Ctx, principal: CurrentPrincipal,
                 request: Request) -> InvoiceOut:
    async with ctx.begin() as session:
        return invoice_out(await services.cancel(session, deps(ctx, request), principal, invoice_id, body.reason), ctx.settings.public_base_url)


runs = APIRouter(tags=["billing runs"])


@runs.post("/billing-runs", response_model=RunOut,
           summary="Advisor: create due drafts, issue due invoices, send due reminders, as of a date")
async def billing_run(body: RunIn, ctx: Ctx, _: Advisor, request: Request) -> RunOut:
    report = await services.billing_run(ctx.session_factory, deps(ctx, request),
                                        as_of=body.as_of or business_today(ctx.clock))
    return RunOut(**vars(report))


def create_api_app(settings: InvoicingSettings, *, clock: Clock | None = None) -> FastAPI:
    app = create_service_api(
        title="Kontor invoicing",
        description="Invoices, numbering, PDF and X-Rechnung, reminders, payments, cancellations.",
        settings=settings,
        outbox_table=outbox,
        routers=[router, runs],
        clock=clock,
    )
    app.state.renderer = DefaultRenderer(settings.seller)
    app.state.validator = create_validator(settings)
    return app


def app_from_env() -> FastAPI:
    """uvicorn factory: settings from the environment (KONTOR_INVOICING_*)."""
    return create_api_app(InvoicingSettings())
