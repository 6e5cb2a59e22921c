"""HTTP API of the invoicing service."""
from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from typing import Annotated, Literal

from fastapi import APIRouter, FastAPI, File, Query, Response, UploadFile, status
from pydantic import BaseModel, Field, field_validator

from kontor import metrics
from kontor.api import Ctx, ServiceContext, create_service_api, file_response
from kontor.auth import Advisor, CurrentPrincipal, DocumentReader
from kontor.clock import Clock
from kontor.contracts.invoices import InvoiceV1
from kontor.inputs import MAX_OFFSET, Amount, BusinessDate, Input, Quantity
from kontor_invoicing.adapters import repository, weasyprint_speedups
from kontor_invoicing.adapters.orm import outbox
from kontor_invoicing.domain import model
from kontor_invoicing.service_layer import runs as billing_runs
from kontor_invoicing.service_layer import services
from kontor_invoicing.settings import InvoicingSettings


class MessageIn(Input):
    message: str = Field(min_length=1, max_length=2000)


class ObjectionIn(Input):
    objection: str = Field(min_length=1, max_length=2000)


class ReasonIn(Input):
    reason: str = Field(min_length=1, max_length=2000)


class LineIn(Input):
    description: str = Field(min_length=1, max_length=1000)
    quantity: Quantity
    unit: Literal["day", "hour", "lump_sum", "week", "month", "other"]
    unit_price: Amount


class AdjustIn(Input):
    """Only the fields sent change; `project_name` and `description` may be cleared with null,
    the others not (null answers 422 naming the field)."""

    lines: list[LineIn] | None = Field(default=None, min_length=1, max_length=model.MAX_LINES)
    project_name: str | None = Field(default=None, max_length=80)
    description: str | None = Field(default=None, max_length=5000)
    invoice_date: BusinessDate | None = None
    due_in_days: int | None = Field(default=None, ge=0, le=model.MAX_DUE_IN_DAYS)

    @field_validator(*model.NOT_NULL, mode="before")
    @classmethod
    def _not_null(cls, value: object) -> object:
        # runs for values sent only: an omitted field stays unset, a null one is refused
        if value is None:
            raise ValueError("must not be null (leave the field out to keep it)")
        return value


class PaymentIn(Input):
    amount: Amount = Field(description="in the invoice's currency, with at most its decimals (JPY none)")
    received_on: BusinessDate = Field(description="as the bank statement shows it; not after today")
    payment_id: uuid.UUID | None = Field(default=None, description="repeat it to make a retry harmless")


class RunIn(Input):
    as_of: BusinessDate | None = Field(default=None, description="default today (Berlin); not later than today "
                                                                 "unless the deployment allows it")


class RemainingOut(BaseModel):
    to_draft: int = Field(description="planned invoices due within the lead days, not drafted yet")
    to_queue: int = Field(description="drafts whose invoice date has come, not queued for issuing yet")
    to_issue: int = Field(description="invoices of this run being checked, numbered or rendered")
    stuck: int = Field(description="invoices of this run whose check or rendering failed every attempt so far")
    to_remind: int


class RunOut(BaseModel):
    run_id: uuid.UUID
    as_of: dt.date
    status: Literal["queued", "running", "finished", "failed"]
    phase: Literal["drafting", "issuing", "reminding", "done"]
    requested_by: str
    created_at: dt.datetime
    started_at: dt.datetime | None
    finished_at: dt.datetime | None
    drafted: int = Field(description="drafts created")
    queued: int = Field(description="drafts queued for issuing")
    issued: int = Field(description="invoices issued (numbered, documents stored, event written)")
    held: int = Field(description="invoices held for adjustment: their X-Rechnung failed the official rules")
    reminded: int
    workers: int = Field(description="worker processes that did something for it")
    remaining: RemainingOut | None = Field(description="what is left, while the run is queued or running")
    invoices_per_s: float | None
    elapsed_s: float | None
    errors: list[dict]


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
    cancellation_pending: bool = Field(default=False, description="a cancellation invoice is being issued")
    documents_pending: bool = Field(default=False, description="status issuing: being checked, numbered and "
                                                                "rendered; the documents follow")
    run_id: uuid.UUID | None = None


class AttachmentOut(BaseModel):
    id: uuid.UUID
    filename: str
    media_type: str
    size: int
    sha256: str
    uploaded_at: dt.datetime


def invoice_out(inv: model.Invoice, base_url: str) -> InvoiceOut:
    return InvoiceOut(
        **services.published(inv, base_url).model_dump(), paid_total=inv.paid_total,
        open_amount=inv.open_amount, overpaid_amount=inv.overpaid_amount, refund_due=inv.refund_due,
        payments=tuple(PaymentOut(payment_id=p.payment_id, amount=p.amount, received_on=p.received_on)
                       for p in inv.payments),
        change_request=inv.change_request, dispute=inv.dispute, validation_errors=inv.validation_errors,
        adjustments=inv.adjustments, cancelled_by=inv.cancelled_by,
        cancellation_pending=inv.cancelled_by is not None and inv.status != "cancelled",
        documents_pending=inv.status == "issuing", run_id=inv.run_id)


def settings_of(ctx: ServiceContext) -> InvoicingSettings:
    if not isinstance(ctx.settings, InvoicingSettings):
        raise TypeError("the invoicing API runs with InvoicingSettings")
    return ctx.settings


def base_url(ctx: ServiceContext) -> str:
    return settings_of(ctx).public_base_url


def deps(ctx: ServiceContext) -> services.Deps:
    return services.Deps(ctx.outbox, ctx.clock, settings_of(ctx))


router = APIRouter(prefix="/invoices", tags=["invoices"])
Status = Literal["draft", "waiting_for_adjustment", "issuing", "invoiced", "disputed", "cancelled", "paid", "discarded",
                 "cancellation"]


@router.get("", response_model=list[InvoiceOut], summary="Invoices by status: a member's own, all for advisors")
async def list_invoices(ctx: Ctx, principal: CurrentPrincipal,
                        status_: Annotated[list[Status] | None, Query(alias="status")] = None,
                        order_id: uuid.UUID | None = None,
                        kind: Annotated[Literal["invoice", "cancellation"] | None,
                                        Query(description="cancellation: cancellation invoices only")] = None,
                        limit: Annotated[int, Query(ge=1, le=500)] = 100,
                        offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0) -> list[InvoiceOut]:
    async with ctx.read() as session:
        found = await repository.list_invoices(session, member_id=None if principal.is_advisor else principal.sub,
                                               statuses=status_, order_id=order_id, kind=kind, limit=limit,
                                               offset=offset)
    return [invoice_out(i, base_url(ctx)) for i in found]


@router.get("/{invoice_id}", response_model=InvoiceOut, summary="One invoice")
async def get_invoice(invoice_id: uuid.UUID, ctx: Ctx, principal: CurrentPrincipal) -> InvoiceOut:
    async with ctx.read() as session:
        return invoice_out(await services.visible(session, principal, invoice_id), base_url(ctx))


async def _document(ctx, principal, invoice_id: uuid.UUID, kind: str) -> Response:
    async with ctx.read() as session:
        row = await services.document(session, principal, invoice_id, kind)
    return file_response(row.content, media_type=row.media_type, filename=row.filename, sha256=row.sha256,
                         disposition="inline")


@router.get("/{invoice_id}/pdf", response_class=Response, summary="The issued invoice as PDF")
async def get_pdf(invoice_id: uuid.UUID, ctx: Ctx, principal: DocumentReader) -> Response:
    return await _document(ctx, principal, invoice_id, "pdf")


@router.get("/{invoice_id}/xrechnung.xml", response_class=Response, summary="The issued invoice as X-Rechnung (CII)")
async def get_xml(invoice_id: uuid.UUID, ctx: Ctx, principal: DocumentReader) -> Response:
    return await _document(ctx, principal, invoice_id, "xrechnung")


@router.post("/{invoice_id}/attachments", response_model=AttachmentOut, status_code=status.HTTP_201_CREATED,
             summary="Add a file to a draft, sent with the invoice (PDF, image, office document; size limit in "
                     "settings)",
             description="Its member while it is a draft, an advisor also while it waits for adjustment; once "
                         "issued the files are kept with the invoice (documents of kind `attachment`).")
async def add_attachment(invoice_id: uuid.UUID, ctx: Ctx, principal: CurrentPrincipal,
                         file: Annotated[UploadFile, File()]) -> AttachmentOut:
    uses = deps(ctx)
    content = await file.read(uses.settings.attachment_max_bytes + 1)  # one byte more: too large is refused
    async with ctx.begin() as session:
        values = await services.add_attachment(session, uses, principal, invoice_id,
                                               filename=file.filename or "", media_type=file.content_type or "",
                                               content=content)
    return AttachmentOut(**{k: values[k] for k in ("id", "filename", "media_type", "size", "sha256", "uploaded_at")})


@router.get("/{invoice_id}/attachments", response_model=list[AttachmentOut],
            summary="The files added to the invoice (to its draft)")
async def list_attachments(invoice_id: uuid.UUID, ctx: Ctx, principal: CurrentPrincipal) -> list[AttachmentOut]:
    async with ctx.read() as session:
        await services.visible(session, principal, invoice_id)
        return [AttachmentOut.model_validate(r, from_attributes=True)
                for r in await repository.attachments_of(session, invoice_id)]


@router.get("/{invoice_id}/attachments/{attachment_id}", summary="Download a file of the invoice",
            response_class=Response, responses={200: {"content": {"application/octet-stream": {}}}})
async def get_attachment(invoice_id: uuid.UUID, attachment_id: uuid.UUID, ctx: Ctx,
                         principal: DocumentReader) -> Response:
    async with ctx.read() as session:
        await services.visible(session, principal, invoice_id, documents=True)
        row = await repository.get_attachment(session, invoice_id, attachment_id)
    return file_response(row.content, media_type=row.media_type, filename=row.filename, sha256=row.sha256)


@router.delete("/{invoice_id}/attachments/{attachment_id}", status_code=status.HTTP_204_NO_CONTENT,
               response_class=Response, summary="Remove a file from a draft")
async def remove_attachment(invoice_id: uuid.UUID, attachment_id: uuid.UUID, ctx: Ctx,
                            principal: CurrentPrincipal) -> Response:
    async with ctx.begin() as session:
        await services.remove_attachment(session, principal, invoice_id, attachment_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/{invoice_id}/change-request", response_model=InvoiceOut,
             summary="Member: ask the cooperative to adjust a draft")
async def change_request(invoice_id: uuid.UUID, body: MessageIn, ctx: Ctx, principal: CurrentPrincipal) -> InvoiceOut:
    async with ctx.begin() as session:
        return invoice_out(await services.request_change(session, deps(ctx), principal, invoice_id,
                                                         body.message), base_url(ctx))


@router.patch("/{invoice_id}", response_model=InvoiceOut, summary="Advisor: adjust a draft or waiting invoice")
async def adjust(invoice_id: uuid.UUID, body: AdjustIn, ctx: Ctx, principal: CurrentPrincipal) -> InvoiceOut:
    changes = body.model_dump(exclude_unset=True)
    async with ctx.begin() as session:
        return invoice_out(await services.adjust(session, deps(ctx), principal, invoice_id, changes), base_url(ctx))


@router.post("/{invoice_id}/issue", response_model=InvoiceOut, status_code=202,
             summary="Issue now: the member's \"save and send\" on a draft, or an advisor after adjusting",
             description="Queued for the invoicing workers: the answer shows it `issuing`; its number and documents "
                         "follow within seconds (`GET /invoices/{id}`), and `invoice.issued` is published then.")
async def issue(invoice_id: uuid.UUID, ctx: Ctx, principal: CurrentPrincipal) -> InvoiceOut:
    async with ctx.begin() as session:
        return invoice_out(await services.issue_now(session, deps(ctx), principal, invoice_id), base_url(ctx))


@router.post("/{invoice_id}/payments", response_model=InvoiceOut, summary="Advisor: record a (partial) payment")
async def payment(invoice_id: uuid.UUID, body: PaymentIn, ctx: Ctx, principal: CurrentPrincipal) -> InvoiceOut:
    async with ctx.begin() as session:
        return invoice_out(await services.record_payment(session, deps(ctx), principal, invoice_id,
                                                         amount=body.amount, received_on=body.received_on,
                                                         payment_id=body.payment_id), base_url(ctx))


@router.post("/{invoice_id}/dispute", response_model=InvoiceOut, summary="Advisor: the client objected")
async def dispute(invoice_id: uuid.UUID, body: ObjectionIn, ctx: Ctx, principal: CurrentPrincipal) -> InvoiceOut:
    async with ctx.begin() as session:
        disputed = await services.dispute(session, deps(ctx), principal, invoice_id, body.objection)
        return invoice_out(disputed, base_url(ctx))


@router.post("/{invoice_id}/resolve-dispute", response_model=InvoiceOut, summary="Advisor: back to invoiced")
async def resolve(invoice_id: uuid.UUID, ctx: Ctx, principal: CurrentPrincipal) -> InvoiceOut:
    async with ctx.begin() as session:
        return invoice_out(await services.resolve_dispute(session, deps(ctx), principal, invoice_id), base_url(ctx))


@router.post("/{invoice_id}/cancel", response_model=InvoiceOut, status_code=202,
             summary="Advisor: cancel with a cancellation invoice (own number, refers to the original)",
             description="The cancellation invoice is queued for the invoicing workers (`cancelled_by`, "
                         "`cancellation_pending`); the invoice becomes `cancelled` and `invoice.cancelled` is "
                         "published once the cancellation invoice's documents are stored.")
async def cancel(invoice_id: uuid.UUID, body: ReasonIn, ctx: Ctx, principal: CurrentPrincipal) -> InvoiceOut:
    async with ctx.begin() as session:
        return invoice_out(await services.cancel(session, deps(ctx), principal, invoice_id, body.reason), base_url(ctx))


runs = APIRouter(prefix="/billing-runs", tags=["billing runs"])


def run_out(view: billing_runs.RunView) -> RunOut:
    return RunOut(**vars(view))


@runs.post("", response_model=RunOut, status_code=202,
           summary="Advisor: start a billing run as of a date (drafts due, invoices due, reminders due)",
           description="Answers at once with the queued run (`Location` names it); the invoicing workers do the "
                       "work. While a run of the same date is queued or running, that run is answered (header "
                       "`Kontor-Duplicate: as_of`).",
           responses={200: {"model": RunOut, "description": "a run of this date is already queued or running"}})
async def start_billing_run(body: RunIn, ctx: Ctx, principal: Advisor, response: Response) -> RunOut:
    async with ctx.begin() as session:
        view, created = await billing_runs.request_run(session, deps(ctx), principal, as_of=body.as_of)
    response.headers["Location"] = f"/billing-runs/{view.run_id}"
    if not created:
        response.status_code = 200
        response.headers["Kontor-Duplicate"] = "as_of"
    return run_out(view)


@runs.get("", response_model=list[RunOut], summary="Advisor: billing runs, newest first")
async def list_billing_runs(ctx: Ctx, _: Advisor, limit: Annotated[int, Query(ge=1, le=200)] = 20,
                            offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0) -> list[RunOut]:
    async with ctx.read() as session:
        return [run_out(v) for v in await billing_runs.list_runs(session, deps(ctx), limit=limit, offset=offset)]


@runs.get("/{run_id}", response_model=RunOut, summary="Advisor: one billing run with its progress")
async def get_billing_run(run_id: uuid.UUID, ctx: Ctx, _: Advisor) -> RunOut:
    async with ctx.read() as session:
        return run_out(await billing_runs.get_run(session, deps(ctx), run_id))


def create_api_app(settings: InvoicingSettings, *, clock: Clock | None = None) -> FastAPI:
    app = create_service_api(
        title="Kontor invoicing",
        description="Invoices, numbering, PDF and X-Rechnung, reminders, payments, cancellations.",
        settings=settings,
        outbox_table=outbox,
        routers=[router, runs],
        clock=clock,
        readiness_details=lambda: {"weasyprint_speedups": weasyprint_speedups.status()},
    )
    metrics.PDF_SPEEDUPS_ACTIVE.set(1 if weasyprint_speedups.log_status()["active"] else 0)
    return app


def app_from_env() -> FastAPI:
    """uvicorn factory: settings from the environment (KONTOR_INVOICING_*)."""
    return create_api_app(InvoicingSettings())
