"""HTTP API of the clients service."""
from __future__ import annotations

import uuid
from typing import Literal

from fastapi import APIRouter, FastAPI, status
from pydantic import BaseModel, ConfigDict, Field

from kontor.api import Ctx, create_service_api
from kontor.auth import CurrentPrincipal
from kontor.clock import Clock
from kontor_clients.adapters import repository
from kontor_clients.adapters.orm import outbox
from kontor_clients.domain import model
from kontor_clients.service_layer import services
from kontor_clients.settings import ClientsSettings


class AddressIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    street: str = Field(max_length=200)
    postal_code: str = Field(max_length=20)
    city: str = Field(max_length=100)
    country: str = Field(min_length=2, max_length=2, description="ISO 3166-1 alpha-2, e.g. DE")


class ClientIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: Literal["company", "person", "public_body"]
    name: str = Field(min_length=1, max_length=200)
    address: AddressIn
    vat_id: str | None = Field(default=None, max_length=20)
    leitweg_id: str | None = Field(default=None, max_length=46)
    invoice_email: str | None = Field(default=None, max_length=254)
    language: Literal["de", "en"] = "de"


class ClientPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: Literal["company", "person", "public_body"] | None = None
    name: str | None = Field(default=None, min_length=1, max_length=200)
    address: AddressIn | None = None
    vat_id: str | None = Field(default=None, max_length=20)
    leitweg_id: str | None = Field(default=None, max_length=46)
    invoice_email: str | None = Field(default=None, max_length=254)
    language: Literal["de", "en"] | None = None


class StandingOut(BaseModel):
    status: str
    reason: str | None
    source: str


class ClientOut(BaseModel):
    id: uuid.UUID
    kind: str
    name: str
    address: AddressIn
    vat_id: str | None
    leitweg_id: str | None
    invoice_email: str | None
    language: str
    standing: StandingOut
    version: int


def client_out(c: model.Client) -> ClientOut:
    return ClientOut(
        id=c.id, kind=c.kind, name=c.name, address=AddressIn(**vars(c.address)), vat_id=c.vat_id,
        leitweg_id=c.leitweg_id, invoice_email=c.invoice_email, language=c.language,
        standing=StandingOut(status=c.standing.status, reason=c.standing.reason, source=c.standing.source),
        version=c.version,
    )


router = APIRouter(prefix="/clients", tags=["clients"])


@router.post("", status_code=status.HTTP_201_CREATED, response_model=ClientOut,
             summary="Register a client in the cooperative's registry")
async def register_client(body: ClientIn, ctx: Ctx, principal: CurrentPrincipal) -> ClientOut:
    async with ctx.begin() as session:
        client = await services.register_client(session, ctx.outbox, ctx.clock, principal, body.model_dump())
    return client_out(client)


@router.get("/{client_id}", response_model=ClientOut, summary="One client")
async def get_client(client_id: uuid.UUID, ctx: Ctx, _: CurrentPrincipal) -> ClientOut:
    async with ctx.session_factory() as session:
        return client_out(await repository.get(session, client_id))


@router.patch("/{client_id}", response_model=ClientOut, summary="Change a client's details")
async def update_client(client_id: uuid.UUID, body: ClientPatch, ctx: Ctx, principal: CurrentPrincipal) -> ClientOut:
    async with ctx.begin() as session:
        client = await services.update_client(session, ctx.outbox, ctx.clock, principal, client_id,
                                              body.model_dump(exclude_unset=True))
    return client_out(client)


def create_api_app(settings: ClientsSettings, *, clock: Clock | None = None) -> FastAPI:
    return create_service_api(
        title="Kontor clients",
        description="The cooperative's client registry: records, standing and receivables.",
        settings=settings,
        outbox_table=outbox,
        routers=[router],
        clock=clock,
    )


def app_from_env() -> FastAPI:
    """uvicorn factory: settings from the environment (KONTOR_CLIENTS_*)."""
    return create_api_app(ClientsSettings())
