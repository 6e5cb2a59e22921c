"""Loads and stores clients; the only place that knows the table layout."""
from __future__ import annotations

import uuid

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from kontor.errors import Conflict, NotFound
from kontor_clients.adapters.orm import clients
from kontor_clients.domain.model import Address, Client, Standing


def _to_row(c: Client) -> dict:
    return dict(
        id=c.id, kind=c.kind, name=c.name, street=c.address.street, postal_code=c.address.postal_code,
        city=c.address.city, country=c.address.country, vat_id=c.vat_id, leitweg_id=c.leitweg_id,
        invoice_email=c.invoice_email, language=c.language, standing=c.standing.status,
        standing_reason=c.standing.reason, standing_source=c.standing.source, standing_since=c.standing.since,
        version=c.version, created_by=c.created_by,
    )


def _from_row(r) -> Client:
    return Client(
        id=r.id, kind=r.kind, name=r.name,
        address=Address(street=r.street, postal_code=r.postal_code, city=r.city, country=r.country),
        vat_id=r.vat_id, leitweg_id=r.leitweg_id, invoice_email=r.invoice_email, language=r.language,
        standing=Standing(status=r.standing, reason=r.standing_reason, source=r.standing_source,
                          since=r.standing_since),
        version=r.version, created_by=r.created_by,
    )


async def get(session: AsyncSession, client_id: uuid.UUID, *, for_update: bool = False) -> Client:
    stmt = sa.select(clients).where(clients.c.id == client_id)
    if for_update:
        stmt = stmt.with_for_update()
    row = (await session.execute(stmt)).first()
    if row is None:
        raise NotFound("client", client_id)
    return _from_row(row)


async def add(session: AsyncSession, client: Client) -> None:
    await session.execute(clients.insert().values(**_to_row(client)))


async def save(session: AsyncSession, client: Client) -> None:
    """Store a changed client; its version must be exactly one more than the stored one."""
    result = await session.execute(
        clients.update()
        .where(clients.c.id == client.id, clients.c.version == client.version - 1)
        .values(**_to_row(client), updated_at=sa.func.now())
    )
    if result.rowcount != 1:
        raise Conflict(f"client {client.id} was changed concurrently; reload and retry")
