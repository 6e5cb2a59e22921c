"""Queries of the notifications database."""
from __future__ import annotations

import datetime as dt
import uuid

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from kontor.db import upsert_newer
from kontor.errors import NotFound
from kontor_notifications.adapters.orm import emails, known_invoices, known_orders, members
from kontor_notifications.domain.model import OPEN_ORDER_STATUSES, PENDING, Member


async def put_member(session: AsyncSession, member: Member) -> None:
    values = {"id": member.member_id, "email": member.email, "name": member.name, "language": member.language}
    stmt = insert(members).values(**values)
    await session.execute(stmt.on_conflict_do_update(
        index_elements=[members.c.id], set_={**{k: stmt.excluded[k] for k in ("email", "name", "language")},
                                             "updated_at": sa.func.now()}))


async def member(session: AsyncSession, member_id: str) -> Member | None:
    return (await members_by_id(session, [member_id]))[member_id]


async def members_by_id(session: AsyncSession, member_ids) -> dict[str, Member | None]:
    """Each of `member_ids` with its address on file, or None."""
    ids = list(dict.fromkeys(member_ids))
    found: dict[str, Member] = {}
    if ids:
        for r in await session.execute(sa.select(members).where(members.c.id.in_(ids))):
            found[r.id] = Member(r.id, r.email, r.name, r.language)
    return {m: found.get(m) for m in ids}


async def upsert_known_order(session: AsyncSession, order: dict) -> bool:
    return await upsert_newer(session, known_orders, {
        "id": uuid.UUID(str(order["order_id"])), "member_id": order["member_id"],
        "client_id": uuid.UUID(str(order["client"]["client_id"])), "status": order["status"],
        "version": order["version"], "data": order})


async def known_order(session: AsyncSession, order_id: uuid.UUID) -> dict | None:
    row = (await session.execute(sa.select(known_orders.c.data).where(known_orders.c.id == order_id))).first()
    return row.data if row else None


async def open_orders_of_client(session: AsyncSession, client_id: uuid.UUID) -> list[dict]:
    rows = await session.execute(sa.select(known_orders.c.data).where(
        known_orders.c.client_id == client_id, known_orders.c.status.in_(OPEN_ORDER_STATUSES))
        .order_by(known_orders.c.member_id, known_orders.c.id))
    return [r.data for r in rows]


async def put_known_invoice(session: AsyncSession, invoice: dict) -> dict:
    """Keep the issued invoice (the first snapshot stays: a replayed event changes nothing); the one kept."""
    stmt = insert(known_invoices).values(id=uuid.UUID(str(invoice["invoice_id"])), data=invoice)
    inserted = (await session.execute(stmt.on_conflict_do_nothing(index_elements=[known_invoices.c.id])
                                      .returning(known_invoices.c.id))).first()
    if inserted is not None:
        return invoice
    return await known_invoice(session, uuid.UUID(str(invoice["invoice_id"]))) or invoice


async def known_invoice(session: AsyncSession, invoice_id: uuid.UUID) -> dict | None:
    row = (await session.execute(sa.select(known_invoices.c.data).where(known_invoices.c.id == invoice_id))).first()
    return row.data if row else None


async def insert_email(session: AsyncSession, values: dict) -> bool:
    """False when this (event, template, recipients) already has its e-mail."""
    stmt = insert(emails).values(**values).on_conflict_do_nothing(
        constraint="uq_emails_event_template_recipients").returning(emails.c.id)
    return (await session.execute(stmt)).first() is not None


async def claim_due_email(session: AsyncSession, now: dt.datetime):
    """One due e-mail, locked until the caller's transaction ends; other replicas skip it."""
    return (await session.execute(
        sa.select(emails).where(emails.c.status == PENDING, emails.c.next_attempt_at <= now)
        .order_by(emails.c.next_attempt_at).limit(1).with_for_update(skip_locked=True))).first()


async def delivery_counts(session: AsyncSession, now: dt.datetime) -> tuple[dict[str, int], int, dt.datetime | None]:
    """The delivery log by status, how many pending e-mails are due, and since when the
    longest-waiting one is (for the metrics)."""
    by_status = {r.status: int(r.n) for r in (await session.execute(
        sa.select(emails.c.status, sa.func.count().label("n")).group_by(emails.c.status))).all()}
    due, oldest = (await session.execute(
        sa.select(sa.func.count(), sa.func.min(emails.c.next_attempt_at))
        .where(emails.c.status == PENDING, emails.c.next_attempt_at <= now))).one()
    return by_status, due, oldest


async def update_email(session: AsyncSession, email_id: uuid.UUID, **values) -> None:
    await session.execute(sa.update(emails).where(emails.c.id == email_id).values(**values, updated_at=sa.func.now()))


async def get_email(session: AsyncSession, email_id: uuid.UUID):
    row = (await session.execute(sa.select(emails).where(emails.c.id == email_id))).first()
    if row is None:
        raise NotFound("e-mail", email_id)
    return row


async def list_emails(session: AsyncSession, *, member_id: str | None, recipient: str | None,
                      order_id: uuid.UUID | None, invoice_id: uuid.UUID | None, status: str | None, limit: int):
    q = sa.select(emails).order_by(emails.c.created_at.desc(), emails.c.id).limit(limit)
    if member_id is not None:
        q = q.where(emails.c.member_id == member_id)
    if recipient:
        address = recipient.strip().lower()
        q = q.where(sa.or_(emails.c.to.contains([address]), emails.c.cc.contains([address])))
    if order_id:
        q = q.where(emails.c.order_id == order_id)
    if invoice_id:
        q = q.where(emails.c.invoice_id == invoice_id)
    if status:
        q = q.where(emails.c.status == status)
    return (await session.execute(q)).all()
