"""HTTP API of the clients service."""
from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from typing import Annotated, Any, Literal

from fastapi import APIRouter, FastAPI, Query, Response, status
from pydantic import BaseModel, Field

from kontor.api import Ctx, create_service_api
from kontor.auth import Advisor, CurrentPrincipal
from kontor.clock import Clock, business_today
from kontor.errors import Conflict
from kontor.inputs import BusinessDate, EmailAddress, Input
from kontor_clients.adapters import repository
from kontor_clients.adapters.orm import outbox
from kontor_clients.domain import model
from kontor_clients.service_layer import services
from kontor_clients.settings import ClientsSettings


class AddressIn(Input):
    street: str = Field(max_length=200)
    postal_code: str = Field(max_length=20)
    city: str = Field(max_length=100)
    country: str = Field(min_length=2, max_length=2, description="ISO 3166-1 alpha-2, e.g. DE")
    subdivision: str | None = Field(
        default=None, max_length=6,
        description="state, province or territory: the ISO 3166-2 code without the country prefix (TX, ON, NSW; "
                    "US-TX is taken as TX); required for US, CA and AU, optional elsewhere")


class ClientIn(Input):
    kind: Literal["company", "person", "public_body"]
    name: str = Field(min_length=1, max_length=200)
    address: AddressIn
    vat_id: str | None = Field(default=None, max_length=20)
    leitweg_id: str | None = Field(default=None, max_length=46)
    invoice_email: EmailAddress | None = None
    language: Literal["de", "en"] = "de"
    zugferd: bool = Field(default=False, description="send invoices as ZUGFeRD hybrid PDFs (PDF/A-3 with the "
                                                     "X-Rechnung embedded) instead of a plain PDF")


class ClientPatch(Input):
    """Only the fields sent change; null removes the VAT id, the Leitweg-ID or the invoice e-mail.
    Billing data (kind, name, address, VAT id, Leitweg-ID, invoice e-mail) of a client with issued
    invoices or other members' orders is changed by advisors only."""

    kind: Literal["company", "person", "public_body"] | None = None
    name: str | None = Field(default=None, min_length=1, max_length=200)
    address: AddressIn | None = None
    vat_id: str | None = Field(default=None, max_length=20)
    leitweg_id: str | None = Field(default=None, max_length=46)
    invoice_email: EmailAddress | None = None
    language: Literal["de", "en"] | None = None
    zugferd: bool | None = None


class StandingOut(BaseModel):
    status: str
    reason: str | None
    source: Literal["initial", "advisor", "debt_rule"]
    since: dt.datetime | None


class ClientOut(BaseModel):
    id: uuid.UUID
    kind: str
    name: str
    address: AddressIn
    vat_id: str | None
    leitweg_id: str | None
    invoice_email: str | None
    language: str
    zugferd: bool
    standing: StandingOut
    version: int


def client_out(c: model.Client) -> ClientOut:
    # Deliberately without created_by: which member works with which client is nobody else's business.
    return ClientOut(
        id=c.id, kind=c.kind, name=c.name, address=AddressIn(**vars(c.address)), vat_id=c.vat_id,
        leitweg_id=c.leitweg_id, invoice_email=c.invoice_email, language=c.language, zugferd=c.zugferd,
        standing=StandingOut(status=c.standing.status, reason=c.standing.reason, source=c.standing.source,
                             since=c.standing.since),
        version=c.version,
    )


class StandingIn(Input):
    status: Literal["ok", "advance_payment_only", "blocked"]
    reason: str = Field(max_length=500, description="why; required for setting and for lifting")


class ActorOut(BaseModel):
    kind: str
    id: str
    name: str | None


class ClientChangeOut(BaseModel):
    client_version: int
    action: Literal["registered", "updated"]
    actor: ActorOut
    changed_at: dt.datetime
    changes: dict[str, dict[str, Any]] = Field(description="{field: {before, after}}; the address as an object")


class StandingChangeOut(BaseModel):
    status: str
    reason: str | None
    source: str
    set_by: str | None
    previous_status: str
    previous_source: str
    client_version: int
    run_id: uuid.UUID | None
    changed_at: dt.datetime


class OverdueInvoiceOut(BaseModel):
    invoice_id: uuid.UUID
    number: str
    due_date: dt.date
    days_overdue: int
    open_amount: Decimal


class CurrencyPositionOut(BaseModel):
    currency: str
    open_amount: Decimal
    overdue_amount: Decimal
    open_invoices: int
    overdue_invoices: int
    oldest_overdue: OverdueInvoiceOut | None
    overpaid_amount: Decimal
    refund_due: Decimal


class OpenInvoiceOut(BaseModel):
    invoice_id: uuid.UUID
    number: str
    currency: str
    issue_date: dt.date
    due_date: dt.date
    amount_due: Decimal
    paid_total: Decimal
    open_amount: Decimal
    restricts_after: dt.date


class ReceivablesOut(BaseModel):
    client_id: uuid.UUID
    as_of: dt.date
    standing: StandingOut
    currencies: list[CurrencyPositionOut]
    open_invoices: list[OpenInvoiceOut]


class StandingRunIn(Input):
    as_of: BusinessDate | None = Field(default=None, description="the date to judge debt as of; default today (Berlin)")


class StandingRunOut(BaseModel):
    id: uuid.UUID
    as_of: dt.date
    trigger: str
    requested_by: str | None
    started_at: dt.datetime
    finished_at: dt.datetime | None
    evaluated: int
    restricted: int
    lifted: int


router = APIRouter(prefix="/clients", tags=["clients"])


@router.post("", status_code=status.HTTP_201_CREATED, response_model=ClientOut,
             summary="Register a client in the cooperative's registry",
             responses={200: {"description": "the client was already registered (same VAT id, or same name at the "
                                             "same postal code): the existing record, with header Kontor-Duplicate "
                                             "saying which"}})
async def register_client(body: ClientIn, ctx: Ctx, principal: CurrentPrincipal, response: Response) -> ClientOut:
    async with ctx.begin() as session:
        registration = await services.register_client(session, ctx.outbox, ctx.clock, principal, body.model_dump())
    response.headers["Location"] = f"/clients/{registration.client.id}"
    if registration.duplicate_of:
        response.status_code = status.HTTP_200_OK
        response.headers["Kontor-Duplicate"] = registration.duplicate_of
    return client_out(registration.client)


@router.get("", response_model=list[ClientOut], summary="Search the registry by name prefix")
async def search_clients(ctx: Ctx, _: CurrentPrincipal,
                         q: Annotated[str, Query(max_length=200, description="at least 3 characters of the name "
                                                 "or of a word in it; case and accents do not matter")],
                         limit: Annotated[int, Query(ge=1, le=100)] = 20) -> list[ClientOut]:
    async with ctx.read() as session:
        return [client_out(c) for c in await services.search_clients(session, q, limit=limit)]


@router.get("/{client_id}", response_model=ClientOut, summary="One client")
async def get_client(client_id: uuid.UUID, ctx: Ctx, _: CurrentPrincipal) -> ClientOut:
    async with ctx.read() as session:
        return client_out(await repository.get(session, client_id))


@router.patch("/{client_id}", response_model=ClientOut, summary="Change a client's details",
              responses={403: {"description": "a member may not change this client's billing data (it has issued "
                                              "invoices or other members' orders); `detail` says why"}})
async def update_client(client_id: uuid.UUID, body: ClientPatch, ctx: Ctx, principal: CurrentPrincipal) -> ClientOut:
    async with ctx.begin() as session:
        client = await services.update_client(session, ctx.outbox, ctx.clock, principal, client_id,
                                              body.model_dump(exclude_unset=True))
    return client_out(client)


@router.put("/{client_id}/standing", response_model=ClientOut,
            summary="Set or lift a client's standing (advisors), with a reason")
async def set_standing(client_id: uuid.UUID, body: StandingIn, ctx: Ctx, principal: Advisor) -> ClientOut:
    async with ctx.begin() as session:
        client = await services.set_standing(session, ctx.outbox, ctx.clock, principal, client_id,
                                             status=body.status, reason=body.reason)
    return client_out(client)


@router.get("/{client_id}/history", response_model=list[ClientChangeOut],
            summary="Every registration and change of the client's record: who, when, before and after (advisors)")
async def change_history(client_id: uuid.UUID, ctx: Ctx, _: Advisor) -> list[ClientChangeOut]:
    async with ctx.read() as session:
        rows = await services.change_history(session, client_id)
    return [ClientChangeOut(client_version=r.client_version, action=r.action,
                            actor=ActorOut(kind=r.actor_kind, id=r.actor_id, name=r.actor_name),
                            changed_at=r.changed_at, changes=r.changes) for r in rows]


@router.get("/{client_id}/standing-history", response_model=list[StandingChangeOut],
            summary="Every change of the client's standing (advisors)")
async def standing_history(client_id: uuid.UUID, ctx: Ctx, _: Advisor) -> list[StandingChangeOut]:
    async with ctx.read() as session:
        await repository.get(session, client_id)
        rows = await repository.standing_history(session, client_id)
    return [StandingChangeOut.model_validate(r, from_attributes=True) for r in rows]


@router.get("/{client_id}/receivables", response_model=ReceivablesOut,
            summary="Open and overdue amounts per currency, oldest overdue invoice (advisors)")
async def receivables(client_id: uuid.UUID, ctx: Ctx, _: Advisor,
                      as_of: Annotated[BusinessDate | None, Query(description="default today (Berlin)")] = None
                      ) -> ReceivablesOut:
    as_of = as_of or business_today(ctx.clock)
    async with ctx.read() as session:
        client, positions, open_items = await services.receivables_position(session, client_id, as_of)
    return ReceivablesOut(
        client_id=client_id, as_of=as_of, standing=client_out(client).standing,
        currencies=[CurrencyPositionOut(
            currency=p.currency, open_amount=p.open_amount, overdue_amount=p.overdue_amount,
            open_invoices=p.open_invoices, overdue_invoices=p.overdue_invoices,
            oldest_overdue=OverdueInvoiceOut(
                invoice_id=p.oldest_overdue.invoice_id, number=p.oldest_overdue.number,
                due_date=p.oldest_overdue.due_date, days_overdue=(as_of - p.oldest_overdue.due_date).days,
                open_amount=p.oldest_overdue.open_amount) if p.oldest_overdue else None,
            overpaid_amount=p.overpaid_amount, refund_due=p.refund_due) for p in positions],
        open_invoices=[OpenInvoiceOut(
            invoice_id=r.invoice_id, number=r.number, currency=r.currency, issue_date=r.issue_date,
            due_date=r.due_date, amount_due=r.amount_due, paid_total=r.paid_total, open_amount=r.open_amount,
            restricts_after=r.restricts_after) for r in open_items],
    )


runs = APIRouter(prefix="/standing-runs", tags=["standing runs"])


@runs.post("", status_code=status.HTTP_201_CREATED, response_model=StandingRunOut,
           summary="Run the debt rule now, as of a date (advisors)")
async def run_standing(body: StandingRunIn, ctx: Ctx, principal: Advisor) -> StandingRunOut:
    report = await services.run_standing(ctx.session_factory, ctx.outbox, ctx.clock,
                                         as_of=body.as_of or business_today(ctx.clock), trigger="advisor",
                                         requested_by=principal.sub, allow_future=ctx.settings.allow_future_as_of)
    if report is None:  # only a scheduled run can be taken by another replica
        raise Conflict("the standing run of that day is already taken")
    async with ctx.read() as session:
        return StandingRunOut.model_validate(await repository.get_run(session, report.run_id), from_attributes=True)


@runs.get("", response_model=list[StandingRunOut], summary="Recent standing runs (advisors)")
async def list_runs(ctx: Ctx, _: Advisor) -> list[StandingRunOut]:
    async with ctx.read() as session:
        return [StandingRunOut.model_validate(r, from_attributes=True) for r in await repository.recent_runs(session)]


def create_api_app(settings: ClientsSettings, *, clock: Clock | None = None) -> FastAPI:
    return create_service_api(
        title="Kontor clients",
        description="The cooperative's client registry: records, search, standing and receivables.",
        settings=settings,
        outbox_table=outbox,
        routers=[router, runs],
        clock=clock,
    )


def app_from_env() -> FastAPI:
    """uvicorn factory: settings from the environment (KONTOR_CLIENTS_*)."""
    return create_api_app(ClientsSettings())
