"""HTTP API of the orders service."""
from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from typing import Literal

from fastapi import APIRouter, FastAPI, status
from pydantic import BaseModel, ConfigDict, Field

from kontor.api import Ctx, create_service_api
from kontor.auth import CurrentPrincipal
from kontor.clock import Clock
from kontor.money import CURRENCIES
from kontor_orders.adapters.orm import outbox
from kontor_orders.domain import model
from kontor_orders.service_layer import services
from kontor_orders.settings import OrdersSettings

Currency = Literal[CURRENCIES]  # type: ignore[valid-type]
Unit = Literal[model.UNITS]  # type: ignore[valid-type]


class ContactPersonIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=200)
    email: str = Field(min_length=3, max_length=254)


class LineIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    description: str = Field(min_length=1, max_length=1000)
    quantity: Decimal = Field(gt=0, description="decimal string, e.g. \"2.5\"")
    unit: Unit
    unit_price: Decimal = Field(gt=0, description="decimal string in the order's currency")


class DraftIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    client_id: uuid.UUID
    contact_person: ContactPersonIn
    currency: Currency = "EUR"
    project_name: str | None = Field(default=None, max_length=80)
    description: str | None = Field(default=None, max_length=5000)
    lines: list[LineIn] = Field(min_length=1)


class LineOut(BaseModel):
    description: str
    quantity: Decimal
    unit: str
    unit_price: Decimal
    net_amount: Decimal


class OrderOut(BaseModel):
    id: uuid.UUID
    status: str
    member_id: str
    client_id: uuid.UUID
    client_name: str
    contact_person: ContactPersonIn
    currency: str
    project_name: str | None
    description: str | None
    lines: list[LineOut]
    net_total: Decimal
    created_at: dt.datetime


def order_out(o: model.Order) -> OrderOut:
    return OrderOut(
        id=o.id, status=o.status, member_id=o.member_id, client_id=o.client_id, client_name=o.client_name,
        contact_person=ContactPersonIn(name=o.contact_person.name, email=o.contact_person.email),
        currency=o.currency, project_name=o.project_name, description=o.description,
        lines=[LineOut(**vars(line)) for line in o.lines], net_total=o.net_total, created_at=o.created_at,
    )


router = APIRouter(prefix="/orders", tags=["orders"])


@router.post("", status_code=status.HTTP_201_CREATED, response_model=OrderOut,
             summary="Create a draft order for a registered client",
             responses={422: {"description": "invalid field, e.g. an unknown client_id"}})
async def create_draft(body: DraftIn, ctx: Ctx, principal: CurrentPrincipal) -> OrderOut:
    async with ctx.begin() as session:
        order = await services.create_draft(session, ctx.clock, principal, body.model_dump())
    return order_out(order)


@router.get("/{order_id}", response_model=OrderOut, summary="One order (members: their own only)")
async def get_order(order_id: uuid.UUID, ctx: Ctx, principal: CurrentPrincipal) -> OrderOut:
    async with ctx.session_factory() as session:
        return order_out(await services.get_order(session, principal, order_id))


def create_api_app(settings: OrdersSettings, *, clock: Clock | None = None) -> FastAPI:
    return create_service_api(
        title="Kontor orders",
        description="Orders of the cooperative's members: drafts, review, client confirmation, billing schedule.",
        settings=settings,
        outbox_table=outbox,
        routers=[router],
        clock=clock,
    )


def app_from_env() -> FastAPI:
    """uvicorn factory: settings from the environment (KONTOR_ORDERS_*)."""
    return create_api_app(OrdersSettings())
