"""HTTP API of the orders service: members' orders, advisors' review, order runs, and the
client's confirmation page (`confirmation.py`)."""
from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Annotated, Literal

from fastapi import APIRouter, FastAPI, File, Query, Response, UploadFile, status
from pydantic import BaseModel, Field

from kontor.api import Ctx, ServiceContext, create_service_api, file_response
from kontor.auth import Advisor, CurrentPrincipal, DocumentReader
from kontor.clock import Clock, add_months, business_today
from kontor.contracts.orders import OrderV1
from kontor.errors import InvalidInput
from kontor.inputs import MAX_OFFSET, Amount, BusinessDate, EmailAddress, Input, Percentage, Quantity
from kontor.money import CURRENCIES
from kontor_orders.adapters import repository
from kontor_orders.adapters.orm import outbox
from kontor_orders.domain import contract, model, values
from kontor_orders.domain.catalogue import SECTORS
from kontor_orders.domain.schedule import MAX_DUE_IN_DAYS, MAX_INSTALLMENTS, Installment, PaymentTerms
from kontor_orders.entrypoints.confirmation import router as confirmation_router
from kontor_orders.service_layer import services
from kontor_orders.settings import OrdersSettings

# Literals of the domain's tuples (one list of values, expanded at runtime for the schema); mypy takes a
# Literal of written-out values only, hence the ignores
Currency = Literal[CURRENCIES]  # type: ignore[valid-type]
Unit = Literal[model.UNITS]  # type: ignore[valid-type]


MAX_REPORT_YEARS = 10
MAX_CANCELLED_INVOICES = 100  # an order has at most a few dozen planned invoices


class ContactPersonIn(Input):
    name: str = Field(min_length=1, max_length=200)
    email: EmailAddress


class LineIn(Input):
    description: str = Field(min_length=1, max_length=1000)
    quantity: Quantity
    unit: Unit
    unit_price: Amount = Field(description="decimal string in the order's currency, with at most its decimals")
    kind: Literal["regular", "optional", "alternative"] = Field(
        default="regular", description="optional and alternative lines are shown, never in the net value or billed")


class ServicePeriodIn(Input):
    start: BusinessDate
    end: BusinessDate


class ConfirmationIn(Input):
    mode: Literal["send", "skip"]
    offer_valid_until: BusinessDate | None = Field(default=None, description="required when sent; the link "
                                                   "works until the end of that day (Europe/Berlin)")
    skip_reason: str | None = Field(default=None, max_length=500)
    separate_agreement: bool = Field(default=False, description="skipped, but a signed agreement is attached")


class InstallmentIn(Input):
    date: BusinessDate
    amount: Amount | None = None
    percentage: Percentage | None = None
    lines: list[Annotated[int, Field(ge=0, lt=model.MAX_LINES)]] = Field(
        default_factory=list, max_length=model.MAX_LINES,
        description="instead of an amount or a percentage: the indexes (0-based) of the order's lines this "
                    "installment bills and lists; each regular line at most once in the plan")


class PaymentIn(Input):
    mode: Literal["after_completion", "installments", "recurring", "advance"]
    due_in_days: int = Field(default=14, ge=0, le=MAX_DUE_IN_DAYS)
    invoice_date: BusinessDate | None = None
    installments: list[InstallmentIn] = Field(default_factory=list, max_length=MAX_INSTALLMENTS)
    interval: Literal["month", "quarter", "year"] | None = None
    first_invoice_date: BusinessDate | None = None


class OrderIn(Input):
    client_id: uuid.UUID
    contact_person: ContactPersonIn
    currency: Currency = "EUR"
    lines: list[LineIn] = Field(min_length=1, max_length=model.MAX_LINES)
    sector: str | None = Field(default=None, max_length=64, description="a code of GET /sectors")
    place_of_service: Literal["DE", "EU", "OTHER"] | None = None
    project_name: str | None = Field(default=None, max_length=80)
    special_agreement: str | None = Field(default=None, max_length=2000)
    description: str | None = Field(default=None, max_length=5000)
    service_period: ServicePeriodIn | None = None
    confirmation: ConfirmationIn | None = None
    payment: PaymentIn | None = None
    comment_for_advisors: str | None = Field(default=None, max_length=2000)


def fields_of(body: OrderIn) -> dict:
    data = body.model_dump(exclude={"service_period", "confirmation", "payment"})
    data["lines"] = [line.model_dump() for line in body.lines]
    data["service_start"] = body.service_period.start if body.service_period else None
    data["service_end"] = body.service_period.end if body.service_period else None
    c = body.confirmation
    data["confirmation"] = model.Confirmation(c.mode, c.offer_valid_until, c.skip_reason, c.separate_agreement) \
        if c else None
    p = body.payment
    data["payment"] = PaymentTerms(
        mode=p.mode, due_in_days=p.due_in_days, invoice_date=p.invoice_date, interval=p.interval,
        first_invoice_date=p.first_invoice_date,
        installments=tuple(Installment(i.date, i.amount, i.percentage, tuple(i.lines))
                           for i in p.installments)) if p else None
    return data


class FlagOut(BaseModel):
    code: str
    message: str
    figures: dict


class RejectionOut(BaseModel):
    by: str
    reason: str


class IssuedInvoiceOut(BaseModel):
    invoice_id: uuid.UUID
    number: str
    net_amount: Decimal | None = Field(default=None, description="what it billed, net (a final invoice less its "
                                       "deductions); none when recorded before amounts were kept")
    cancelled: bool = Field(default=False, description="cancelled by a cancellation invoice: not in order_value")


class ArchivedLineOut(BaseModel):
    index: int
    description: str
    net_amount: Decimal


class OrderOut(OrderV1):
    """The published order plus what only the member and the advisors see."""

    client_standing: str
    created_at: dt.datetime
    comment_for_advisors: str | None = None
    flags: tuple[FlagOut, ...] = ()
    rejection: RejectionOut | None = None
    changes_requested: str | None = None
    cancellation_reason: str | None = None
    issued_invoices: tuple[IssuedInvoiceOut, ...] = ()
    duplicated_from: uuid.UUID | None = None
    open_lines: tuple[int, ...] = Field(default=(), description="indexes of the lines still open (not archived)")
    archive: tuple[ArchivedLineOut, ...] = Field(default=(), description=(
        "the archive section: lines tidied up (fully invoiced, kept in the order and its values, no longer open)"))


def order_out(o: model.Order, attachments, *, today: dt.date) -> OrderOut:
    """With the three values (plan value as of `today`)."""
    published = services.snapshot(o, attachments, "", today=today)
    return OrderOut(
        **published.model_dump(), client_standing=o.client.standing, created_at=o.created_at,
        comment_for_advisors=o.comment_for_advisors,
        flags=tuple(FlagOut(code=f.code, message=f.message, figures=f.figures) for f in o.flags),
        rejection=RejectionOut(by=o.rejection.by, reason=o.rejection.reason) if o.rejection else None,
        changes_requested=o.changes_requested, cancellation_reason=o.cancellation_reason,
        issued_invoices=tuple(IssuedInvoiceOut(invoice_id=i.invoice_id, number=i.number, net_amount=i.net_amount,
                                               cancelled=i.cancelled) for i in o.issued_invoices),
        duplicated_from=o.duplicated_from,
        open_lines=tuple(i for i in range(len(o.lines)) if i not in o.archived_lines),
        archive=tuple(ArchivedLineOut(index=i, description=o.lines[i].description,
                                             net_amount=o.lines[i].net_amount) for i in o.archived_lines),
    )


async def _out(session, o: model.Order, ctx: ServiceContext) -> OrderOut:
    return order_out(o, await repository.attachments_of(session, o.id), today=business_today(ctx.clock))


def settings_of(ctx: ServiceContext) -> OrdersSettings:
    if not isinstance(ctx.settings, OrdersSettings):
        raise TypeError("the orders API runs with OrdersSettings")
    return ctx.settings


def deps(ctx: ServiceContext) -> services.Deps:
    return services.Deps(ctx.outbox, ctx.clock, settings_of(ctx))


class ReasonIn(Input):
    reason: str = Field(min_length=1, max_length=2000)


class AdjustIn(Input):
    project_name: str | None = Field(default=None, max_length=80)
    description: str | None = Field(default=None, max_length=5000)
    special_agreement: str | None = Field(default=None, max_length=2000)
    line_descriptions: dict[Annotated[int, Field(ge=0, lt=model.MAX_LINES)],
                            Annotated[str, Field(min_length=1, max_length=1000)]] | None = Field(
        default=None, max_length=model.MAX_LINES, description="line index → new description")
    note: str | None = Field(default=None, max_length=2000, description="why (kept in the history)")


class PriceChangeIn(Input):
    line: int = Field(ge=0, lt=model.MAX_LINES, description="the index (0-based) of the order's line")
    unit_price: Amount = Field(description="the new unit price, net, in the order's currency")
    effective_from: BusinessDate = Field(description="the first day of a billing period not yet invoiced: that "
                                         "period and every later one bill the new price")


class ContractIn(Input):
    action: Literal["auto_renew", "pause", "resume", "cancel"] = Field(description=(
        "auto_renew: renew the term automatically (term_months, notice_months); pause: no invoices for the periods "
        "beginning from `from` (until `until`, or until resumed); resume: billed again from `from`; cancel: no "
        "further renewal, allowed until the notice deadline"))
    from_: BusinessDate | None = Field(default=None, alias="from")
    until: BusinessDate | None = None
    term_months: int | None = Field(default=None, ge=1, le=contract.MAX_TERM_MONTHS)
    notice_months: int | None = Field(default=None, ge=0, le=contract.MAX_NOTICE_MONTHS)


class CancellationDecisionIn(Input):
    approve: bool
    reason: str = Field(min_length=1, max_length=2000)
    cancel_invoice_ids: list[uuid.UUID] = Field(default_factory=list, max_length=MAX_CANCELLED_INVOICES,
                                                description="issued invoices of this order to cancel as well")


class CommentIn(Input):
    text: str = Field(min_length=1, max_length=5000)


class CommentOut(BaseModel):
    id: int
    author_id: str
    author_role: str
    text: str
    at: dt.datetime


class HistoryOut(BaseModel):
    at: dt.datetime
    actor_kind: str
    actor_id: str | None
    action: str
    from_status: str | None
    to_status: str
    reason: str | None
    details: dict | list | None


class AttachmentOut(BaseModel):
    id: uuid.UUID
    filename: str
    media_type: str
    size: int
    sha256: str
    uploaded_at: dt.datetime


class RunIn(Input):
    as_of: BusinessDate | None = Field(default=None, description="default today (Europe/Berlin)")


class RunOut(BaseModel):
    as_of: dt.date
    warned: int
    expired: int
    completed: int
    renewed: int = Field(default=0, description="terms of automatically renewing orders renewed")
    reminded: int = Field(default=0, description="members reminded of a notice deadline")
    resumed: int = Field(default=0, description="pauses that ended")
    finished: int = Field(default=0, description="one-off contracts finished")


class SectorOut(BaseModel):
    code: str
    name_en: str
    name_de: str
    vat_rule: str
    processable: bool


router = APIRouter(prefix="/orders", tags=["orders"])
Status = Literal[model.STATUSES]  # type: ignore[valid-type]  # see Currency


@router.post("", status_code=status.HTTP_201_CREATED, response_model=OrderOut,
             summary="Create a draft order (members); a draft may be incomplete")
async def create_draft(body: OrderIn, ctx: Ctx, principal: CurrentPrincipal) -> OrderOut:
    async with ctx.begin() as session:
        order = await services.create_draft(session, deps(ctx), principal, fields_of(body))
        return await _out(session, order, ctx)


SORTS = ("created_at", "-created_at", "net_value", "-net_value", "plan_value", "-plan_value", "order_value",
         "-order_value")
Sort = Literal[SORTS]  # type: ignore[valid-type]  # see Currency
SUM_HEADERS = {"net_value": "Kontor-Sum-Net-Value", "plan_value": "Kontor-Sum-Plan-Value",
               "order_value": "Kontor-Sum-Order-Value"}


def sum_header(per_currency: dict) -> str:
    """`EUR 1200.00, USD 50.00`: one sum per currency, alphabetical; empty for no orders."""
    return ", ".join(f"{currency} {amount}" for currency, amount in per_currency.items())


@router.get("", response_model=list[OrderOut],
            summary="Orders: a member's own; for advisors every order except drafts",
            description="`sort`: newest first by default (`-created_at`); by one of the three values, `-` for "
                        "descending (ties by newest). The headers `Kontor-Sum-Net-Value`, `Kontor-Sum-Plan-Value`, "
                        "`Kontor-Sum-Order-Value` sum each value over the listed orders (this page) per currency: "
                        "`EUR 1200.00, USD 50.00`.")
async def list_orders(ctx: Ctx, principal: CurrentPrincipal, response: Response,
                      status_: Annotated[list[Status] | None, Query(alias="status")] = None,
                      sort: Sort = "-created_at",
                      limit: Annotated[int, Query(ge=1, le=200)] = 50,
                      offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0) -> list[OrderOut]:
    today = business_today(ctx.clock)
    by_value = sort.lstrip("-") in values.VALUES
    async with ctx.read() as session:
        # a value depends on the day (plan value) or on the document: those sorts order in memory
        found = await repository.list_orders(
            session, member_id=None if principal.is_advisor else principal.sub, statuses=status_,
            exclude_drafts=principal.is_advisor, limit=None if by_value else limit, offset=0 if by_value else offset,
            oldest_first=sort == "created_at")
        if by_value:
            name = sort.lstrip("-")
            found = sorted(found, key=lambda o: values.values(o, today=today)[name], reverse=sort.startswith("-"))
            found = found[offset:offset + limit]
        attachments = await repository.attachments_of_orders(session, [o.id for o in found])
    for name, total in values.sums(found, today=today).items():
        response.headers[SUM_HEADERS[name]] = sum_header(total)
    return [order_out(o, attachments.get(o.id, []), today=today) for o in found]


@router.get("/{order_id}", response_model=OrderOut, summary="One order")
async def get_order(order_id: uuid.UUID, ctx: Ctx, principal: CurrentPrincipal) -> OrderOut:
    async with ctx.read() as session:
        return await _out(session, await services.visible(session, principal, order_id), ctx)


@router.put("/{order_id}", response_model=OrderOut, summary="Edit a draft (the whole order)")
async def update_draft(order_id: uuid.UUID, body: OrderIn, ctx: Ctx, principal: CurrentPrincipal) -> OrderOut:
    async with ctx.begin() as session:
        order = await services.update_draft(session, deps(ctx), principal, order_id, fields_of(body))
        return await _out(session, order, ctx)


@router.delete("/{order_id}", status_code=status.HTTP_204_NO_CONTENT, summary="Delete a draft")
async def delete_draft(order_id: uuid.UUID, ctx: Ctx, principal: CurrentPrincipal) -> Response:
    async with ctx.begin() as session:
        await services.delete_draft(session, principal, order_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


async def _order_of(change: Awaitable[tuple[model.Order, object]]) -> model.Order:
    return (await change)[0]


def _action(path: str, summary: str, call, body_model=None, status_code: int = 200):
    """Register POST /orders/{id}/<path> running one use case."""
    endpoint: Callable[..., Awaitable[OrderOut]]
    if body_model is None:
        async def without_body(order_id: uuid.UUID, ctx: Ctx, principal: CurrentPrincipal) -> OrderOut:
            async with ctx.begin() as session:
                return await _out(session, await call(session, deps(ctx), principal, order_id, None), ctx)
        endpoint = without_body
    else:
        # the body's annotation is a placeholder: annotations are strings (PEP 563) resolved in module
        # globals, and the body model is local, so FastAPI is given it below
        async def with_body(order_id: uuid.UUID, body: BaseModel, ctx: Ctx, principal: CurrentPrincipal) -> OrderOut:
            async with ctx.begin() as session:
                return await _out(session, await call(session, deps(ctx), principal, order_id, body), ctx)
        with_body.__annotations__["body"] = body_model
        endpoint = with_body
    endpoint.__name__ = path.replace("-", "_")
    router.post(f"/{{order_id}}/{path}", response_model=OrderOut, summary=summary, status_code=status_code,
                responses={409: {"description": "not allowed in the order's current status (named in the answer)"}}
                )(endpoint)


_action("submit", "Submit for review (member); automatic checks run",
        lambda s, d, p, i, _: services.submit(s, d, p, i))
_action("approve", "Approve (advisor): to the client's confirmation, or active when it was skipped",
        lambda s, d, p, i, _: services.approve(s, d, p, i))
_action("reject", "Reject with a reason (advisor)", lambda s, d, p, i, b: services.reject(s, d, p, i, b.reason),
        ReasonIn)
_action("adjust", "Minor adjustment of texts (advisor), recorded; never scope or amounts",
        lambda s, d, p, i, b: services.adjust(s, d, p, i, b.model_dump(exclude_unset=True, exclude={"note"}), b.note),
        AdjustIn)
_action("cancellation-request", "Ask the cooperative to cancel an active order (member)",
        lambda s, d, p, i, b: services.request_cancellation(s, d, p, i, b.reason), ReasonIn)
_action("cancellation-decision", "Approve or decline a cancellation request (advisor)",
        lambda s, d, p, i, b: services.decide_cancellation(s, d, p, i, approve=b.approve, reason=b.reason,
                                                           cancel_invoice_ids=tuple(b.cancel_invoice_ids)),
        CancellationDecisionIn)
_action("price-changes", "Change the unit price of a line of an active recurring order from a billing period on "
        "(member or advisor); never retroactively: 409 with the reason for a period already invoiced",
        lambda s, d, p, i, b: _order_of(services.change_price(s, d, p, i, line=b.line, unit_price=b.unit_price,
                                                              effective_from=b.effective_from)), PriceChangeIn)
_action("contract", "Change the contract of an active recurring order (member or advisor): automatic renewal, "
        "pause, resume, cancel; the planned invoices follow; 409 with the reason for a change not allowed now",
        lambda s, d, p, i, b: services.change_contract(s, d, p, i, action=b.action, start=b.from_, until=b.until,
                                                       term_months=b.term_months, notice_months=b.notice_months),
        ContractIn)
_action("tidy-up", "Move the fully invoiced lines of the order to its archive (member); 409 when there are none",
        lambda s, d, p, i, _: services.tidy_up(s, d, p, i))
_action("complete", "Complete a finished order by hand (member)", lambda s, d, p, i, _: services.complete(s, d, p, i))
_action("duplicate", "Duplicate any order into a new draft (member)",
        lambda s, d, p, i, _: services.duplicate(s, d, p, i), status_code=status.HTTP_201_CREATED)


@router.get("/{order_id}/history", response_model=list[HistoryOut], summary="Every transition: who, when, why")
async def history(order_id: uuid.UUID, ctx: Ctx, principal: CurrentPrincipal) -> list[HistoryOut]:
    async with ctx.read() as session:
        await services.visible(session, principal, order_id)
        return [HistoryOut.model_validate(r, from_attributes=True) for r in await repository.history(session, order_id)]


@router.get("/{order_id}/comments", response_model=list[CommentOut],
            summary="Comments between member and advisors (never shown to the client)")
async def comments(order_id: uuid.UUID, ctx: Ctx, principal: CurrentPrincipal) -> list[CommentOut]:
    async with ctx.read() as session:
        await services.visible(session, principal, order_id)
        rows = await repository.comments(session, order_id)
        return [CommentOut.model_validate(r, from_attributes=True) for r in rows]


@router.post("/{order_id}/comments", response_model=CommentOut, status_code=status.HTTP_201_CREATED,
             summary="Add a comment")
async def add_comment(order_id: uuid.UUID, body: CommentIn, ctx: Ctx, principal: CurrentPrincipal) -> CommentOut:
    async with ctx.begin() as session:
        row = await services.add_comment(session, deps(ctx), principal, order_id, body.text)
    return CommentOut.model_validate(row, from_attributes=True)


@router.post("/{order_id}/attachments", response_model=AttachmentOut, status_code=status.HTTP_201_CREATED,
             summary="Attach a document (PDF, image, office document; size limit in settings)")
async def add_attachment(order_id: uuid.UUID, ctx: Ctx, principal: CurrentPrincipal,
                         file: Annotated[UploadFile, File()]) -> AttachmentOut:
    content = await file.read(settings_of(ctx).attachment_max_bytes + 1)
    async with ctx.begin() as session:
        values = await services.add_attachment(session, deps(ctx), principal, order_id, filename=file.filename or "",
                                               media_type=file.content_type or "", content=content)
    return AttachmentOut(**{k: values[k] for k in ("id", "filename", "media_type", "size", "sha256")},
                         uploaded_at=values["uploaded_at"])


@router.get("/{order_id}/attachments", response_model=list[AttachmentOut], summary="The order's documents")
async def list_attachments(order_id: uuid.UUID, ctx: Ctx, principal: CurrentPrincipal) -> list[AttachmentOut]:
    async with ctx.read() as session:
        await services.visible(session, principal, order_id)
        return [AttachmentOut.model_validate(r, from_attributes=True)
                for r in await repository.attachments_of(session, order_id)]


@router.get("/{order_id}/attachments/{attachment_id}", summary="Download a document",
            response_class=Response, responses={200: {"content": {"application/octet-stream": {}}}})
async def get_attachment(order_id: uuid.UUID, attachment_id: uuid.UUID, ctx: Ctx,
                         principal: DocumentReader) -> Response:
    async with ctx.read() as session:
        await services.visible(session, principal, order_id, documents=True)
        row = await repository.get_attachment(session, order_id, attachment_id)
    return file_response(row.content, media_type=row.media_type, filename=row.filename, sha256=row.sha256)


meta = APIRouter(tags=["orders"])


class RevenueRowOut(BaseModel):
    month: str = Field(description="YYYY-MM of the planned invoice date")
    currency: str
    net_amount: Decimal
    invoices: int
    from_renewals: int = Field(default=0, description="of the invoices, those of terms an automatically renewing "
                               "order will renew into (not planned yet)")


class FutureRevenueOut(BaseModel):
    from_: dt.date = Field(alias="from")
    to: dt.date
    group_by: Literal["month"]
    rows: list[RevenueRowOut]


@meta.get("/reports/future-revenue", response_model=FutureRevenueOut, response_model_by_alias=True,
          summary="Future revenue: the planned invoices of active orders per month and currency, net",
          description="Members: their own orders; advisors: every order. `from` and `to` are invoice dates "
                      "(both included, at most 10 years apart).")
async def future_revenue(ctx: Ctx, principal: CurrentPrincipal,
                         from_: Annotated[BusinessDate, Query(alias="from")],
                         to: BusinessDate, group_by: Literal["month"] = "month") -> FutureRevenueOut:
    if to < from_:
        raise InvalidInput(field="to", message="must not be before from", location="query")
    if to > add_months(from_, 12 * MAX_REPORT_YEARS):
        raise InvalidInput(field="to", message=f"at most {MAX_REPORT_YEARS} years after from",
                           location="query")
    async with ctx.read() as session:
        found = await repository.list_orders(session, member_id=None if principal.is_advisor else principal.sub,
                                             statuses=["active"], exclude_drafts=True, limit=None, offset=0)
    rows = values.future_revenue(found, start=from_, end=to)
    return FutureRevenueOut.model_validate({"from": from_, "to": to, "group_by": group_by,
                                            "rows": [RevenueRowOut(**vars(r)) for r in rows]})


class VatPreviewOut(BaseModel):
    """The VAT an order will have, as its own `vat` entries say it (without amounts: no lines yet)."""

    category: Literal["S", "AE", "E", "O", "Z"]
    rate: Decimal
    note: str | None = Field(default=None, description="reverse charge, exemption, not subject; in `language`")
    language: Literal["de", "en"]


@meta.get("/vat-preview", response_model=VatPreviewOut, summary="The VAT that will apply to an order",
          description="From the client (its kind and VAT id), the sector and the place of service, by the rules an "
                      "order's VAT follows; the note in `language` (default: the client's, as on its invoices).")
async def vat_preview(ctx: Ctx, principal: CurrentPrincipal, client_id: uuid.UUID, sector: str = Query(max_length=40),
                      place_of_service: Literal["DE", "EU", "OTHER"] = Query(),
                      language: Literal["de", "en"] | None = None) -> VatPreviewOut:
    async with ctx.read() as session:
        vat, client = await services.vat_preview(session, principal, client_id=client_id, sector=sector,
                                                 place_of_service=place_of_service)
    lang = language or ("en" if client.language == "en" else "de")
    return VatPreviewOut(category=vat.category, rate=vat.rate, note=vat.note(lang), language=lang)


@meta.get("/sectors", response_model=list[SectorOut], summary="The sector catalogue")
async def sectors() -> list[SectorOut]:
    return [SectorOut(**vars(s)) for s in SECTORS.values()]


@meta.post("/order-runs", response_model=RunOut, summary="Run the time-driven rules as of a date (advisors)")
async def order_run(body: RunIn, ctx: Ctx, _: Advisor) -> RunOut:
    report = await services.run_rules(ctx.session_factory, deps(ctx), as_of=body.as_of or business_today(ctx.clock))
    return RunOut(**vars(report))


def create_api_app(settings: OrdersSettings, *, clock: Clock | None = None) -> FastAPI:
    return create_service_api(
        title="Kontor orders",
        description="Orders of the cooperative's members: drafts, review, client confirmation, billing schedule.",
        settings=settings,
        outbox_table=outbox,
        routers=[router, meta, confirmation_router],
        clock=clock,
    )


def app_from_env() -> FastAPI:
    """uvicorn factory: settings from the environment (KONTOR_ORDERS_*)."""
    return create_api_app(OrdersSettings())
