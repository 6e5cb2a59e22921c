"""Loads and stores invoices (as documents), planned invoices, numbering, documents and
the read models of clients and orders."""
from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence

import sqlalchemy as sa
from pydantic import TypeAdapter
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from kontor.db import upsert_newer
from kontor.errors import Conflict, NotFound
from kontor_invoicing.adapters.orm import (
    invoice_counters,
    invoice_documents,
    invoices,
    known_clients,
    known_orders,
    planned_invoices,
)
from kontor_invoicing.domain.model import Invoice

_INVOICE = TypeAdapter(Invoice)


# -- read models ---------------------------------------------------------------------------

async def upsert_known_client(session: AsyncSession, values: dict) -> bool:
    return await upsert_newer(session, known_clients, values)


async def upsert_known_order(session: AsyncSession, values: dict) -> bool:
    return await upsert_newer(session, known_orders, values)


async def known_client(session: AsyncSession, client_id: uuid.UUID) -> dict | None:
    row = (await session.execute(sa.select(known_clients.c.snapshot).where(known_clients.c.id == client_id))).first()
    return row.snapshot if row else None


async def known_order(session: AsyncSession, order_id: uuid.UUID) -> dict | None:
    row = (await session.execute(sa.select(known_orders.c.data).where(known_orders.c.id == order_id))).first()
    return row.data if row else None


# -- planned invoices ---------------------------------------------------------------------

async def add_plans(session: AsyncSession, order_id: uuid.UUID, plans: list[dict]) -> int:
    """Plan the order's invoices once; a replayed activation adds nothing."""
    if not plans:
        return 0
    stmt = insert(planned_invoices).values([
        {"order_id": order_id, "seq": p["seq"], "invoice_date": dt.date.fromisoformat(p["invoice_date"]),
         "status": "planned", "plan": p} for p in plans
    ]).on_conflict_do_nothing().returning(planned_invoices.c.seq)
    return len((await session.execute(stmt)).all())


async def due_plans(session: AsyncSession, *, until: dt.date, limit: int) -> list:
    """Planned invoices whose draft is due, locked; rows another replica holds are skipped."""
    return (await session.execute(
        sa.select(planned_invoices).where(planned_invoices.c.status == "planned",
                                          planned_invoices.c.invoice_date <= until)
        .order_by(planned_invoices.c.invoice_date, planned_invoices.c.order_id, planned_invoices.c.seq)
        .limit(limit).with_for_update(skip_locked=True))).all()


async def mark_plan(session: AsyncSession, order_id: uuid.UUID, seq: int, status: str) -> None:
    await session.execute(planned_invoices.update().where(
        planned_invoices.c.order_id == order_id, planned_invoices.c.seq == seq).values(
        status=status, updated_at=sa.func.now()))


async def drop_open_plans(session: AsyncSession, order_id: uuid.UUID) -> int:
    result = await session.execute(planned_invoices.update().where(
        planned_invoices.c.order_id == order_id, planned_invoices.c.status == "planned").values(
        status="dropped", updated_at=sa.func.now()))
    return result.rowcount


# -- invoices ------------------------------------------------------------------------------

def _columns(inv: Invoice) -> dict:
    return dict(order_id=inv.order_id, member_id=inv.member_id, client_id=inv.client_id, seq=inv.seq, kind=inv.kind,
                status=inv.status, number=inv.number, invoice_date=inv.invoice_date, due_date=inv.due_date,
                reminders_sent=inv.reminders_sent, version=inv.version, data=_INVOICE.dump_python(inv, mode="json"))


async def add(session: AsyncSession, inv: Invoice) -> bool:
    """Insert; False when this planned invoice already has one (another replica was first)."""
    stmt = insert(invoices).values(id=inv.id, created_at=inv.created_at, **_columns(inv))
    if inv.kind == "invoice":
        stmt = stmt.on_conflict_do_nothing(index_elements=["order_id", "seq"],
                                           index_where=sa.text("kind = 'invoice'"))
    return (await session.execute(stmt.returning(invoices.c.id))).first() is not None


async def save(session: AsyncSession, inv: Invoice, *, expected_version: int) -> None:
    result = await session.execute(invoices.update().where(
        invoices.c.id == inv.id, invoices.c.version == expected_version).values(
        **_columns(inv), updated_at=sa.func.now()))
    if result.rowcount != 1:
        raise Conflict(f"invoice {inv.id} was changed concurrently; reload and retry")


async def get(session: AsyncSession, invoice_id: uuid.UUID, *, for_update: bool = False) -> Invoice:
    stmt = sa.select(invoices.c.data).where(invoices.c.id == invoice_id)
    if for_update:
        stmt = stmt.with_for_update()
    row = (await session.execute(stmt)).first()
    if row is None:
        raise NotFound("invoice", invoice_id)
    return _INVOICE.validate_python(row.data)


async def lock_drafts_due(session: AsyncSession, *, until: dt.date, limit: int) -> list[Invoice]:
    """Drafts whose invoice date has come, locked, skipping those another replica holds."""
    rows = (await session.execute(
        sa.select(invoices.c.data).where(invoices.c.status == "draft", invoices.c.kind == "invoice",
                                         invoices.c.invoice_date <= until)
        .order_by(invoices.c.invoice_date, invoices.c.created_at, invoices.c.id).limit(limit)
        .with_for_update(skip_locked=True))).all()
    return [_INVOICE.validate_python(r.data) for r in rows]


async def lock_reminders_due(session: AsyncSession, *, as_of: dt.date, schedule: Sequence[int],
                             limit: int) -> list[Invoice]:
    """Issued, unpaid invoices whose next reminder (the k-th step of `schedule`, days after
    the due date) is due as of `as_of`; locked, skipping rows another replica holds."""
    steps = [sa.and_(invoices.c.reminders_sent == k, invoices.c.due_date <= as_of - dt.timedelta(days=days))
             for k, days in enumerate(schedule)]
    if not steps:
        return []
    rows = (await session.execute(
        sa.select(invoices.c.data).where(invoices.c.status == "invoiced", invoices.c.kind == "invoice", sa.or_(*steps))
        .order_by(invoices.c.due_date, invoices.c.id).limit(limit).with_for_update(skip_locked=True))).all()
    return [_INVOICE.validate_python(r.data) for r in rows]


async def list_invoices(session: AsyncSession, *, member_id: str | None, statuses: Sequence[str] | None,
                        order_id: uuid.UUID | None, limit: int, offset: int) -> list[Invoice]:
    stmt = sa.select(invoices.c.data).order_by(invoices.c.created_at.desc(), invoices.c.id).limit(limit).offset(offset)
    if member_id is not None:
        stmt = stmt.where(invoices.c.member_id == member_id)
    if statuses:
        stmt = stmt.where(invoices.c.status.in_(statuses))
    if order_id is not None:
        stmt = stmt.where(invoices.c.order_id == order_id)
    return [_INVOICE.validate_python(r.data) for r in (await session.execute(stmt)).all()]


async def of_order(session: AsyncSession, order_id: uuid.UUID) -> list[Invoice]:
    rows = (await session.execute(sa.select(invoices.c.data).where(invoices.c.order_id == order_id)
                                  .order_by(invoices.c.seq, invoices.c.created_at))).all()
    return [_INVOICE.validate_python(r.data) for r in rows]


async def next_number(session: AsyncSession, year: int) -> int:
    """The next number of the year. The counter row stays locked until the transaction
    ends, so a rolled-back issue never leaves a gap and two replicas never share a number."""
    stmt = insert(invoice_counters).values(year=year, last_number=1)
    stmt = stmt.on_conflict_do_update(index_elements=["year"],
                                      set_={"last_number": invoice_counters.c.last_number + 1})
    return (await session.execute(stmt.returning(invoice_counters.c.last_number))).scalar_one()


# -- documents -------------------------------------------------------------------------------

async def add_document(session: AsyncSession, invoice_id: uuid.UUID, *, kind: str, filename: str, media_type: str,
                       sha256: str, content: bytes, now: dt.datetime) -> None:
    await session.execute(invoice_documents.insert().values(
        invoice_id=invoice_id, kind=kind, filename=filename, media_type=media_type, sha256=sha256, content=content,
        created_at=now))


async def get_document(session: AsyncSession, invoice_id: uuid.UUID, kind: str):
    row = (await session.execute(sa.select(invoice_documents).where(
        invoice_documents.c.invoice_id == invoice_id, invoice_documents.c.kind == kind))).first()
    if row is None:
        raise NotFound(f"{kind} document of invoice", invoice_id)
    return row
