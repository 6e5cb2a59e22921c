"""Loads and stores orders and the client read model."""
from __future__ import annotations

import uuid
from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from kontor.contracts.clients import ClientSnapshotV1
from kontor.errors import NotFound
from kontor_orders.adapters.orm import known_clients, orders
from kontor_orders.domain.model import ContactPerson, KnownClient, Line, Order


async def get_known_client(session: AsyncSession, client_id: uuid.UUID) -> KnownClient | None:
    row = (await session.execute(sa.select(known_clients).where(known_clients.c.id == client_id))).first()
    return KnownClient(id=row.id, name=row.name, standing=row.standing) if row else None


async def upsert_known_client(session: AsyncSession, snapshot: ClientSnapshotV1) -> bool:
    """Apply a client snapshot unless a newer version is already known; True when applied."""
    values = dict(id=snapshot.client_id, name=snapshot.name, standing=snapshot.standing.status,
                  version=snapshot.version, snapshot=snapshot.model_dump(mode="json"))
    stmt = insert(known_clients).values(**values)
    stmt = stmt.on_conflict_do_update(
        index_elements=[known_clients.c.id],
        set_={**{k: stmt.excluded[k] for k in ("name", "standing", "version", "snapshot")}, "updated_at": sa.func.now()},
        where=known_clients.c.version < stmt.excluded.version,
    ).returning(known_clients.c.id)
    return (await session.execute(stmt)).first() is not None


async def add(session: AsyncSession, order: Order) -> None:
    await session.execute(orders.insert().values(
        id=order.id, member_id=order.member_id, client_id=order.client_id, client_name=order.client_name,
        contact_name=order.contact_person.name, contact_email=order.contact_person.email, currency=order.currency,
        project_name=order.project_name, description=order.description, status=order.status,
        created_at=order.created_at,
        lines=[{"description": l.description, "quantity": str(l.quantity), "unit": l.unit,
                "unit_price": str(l.unit_price), "net_amount": str(l.net_amount)} for l in order.lines],
    ))


async def get(session: AsyncSession, order_id: uuid.UUID) -> Order:
    row = (await session.execute(sa.select(orders).where(orders.c.id == order_id))).first()
    if row is None:
        raise NotFound("order", order_id)
    return Order(
        id=row.id, member_id=row.member_id, client_id=row.client_id, client_name=row.client_name,
        contact_person=ContactPerson(row.contact_name, row.contact_email), currency=row.currency,
        project_name=row.project_name, description=row.description, status=row.status, created_at=row.created_at,
        lines=tuple(Line(description=l["description"], quantity=Decimal(l["quantity"]), unit=l["unit"],
                         unit_price=Decimal(l["unit_price"]), net_amount=Decimal(l["net_amount"]))
                    for l in row.lines),
    )
