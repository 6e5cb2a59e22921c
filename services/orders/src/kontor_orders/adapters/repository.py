"""Loads and stores orders (as documents), their history, comments, attachments and
confirmation tokens, and the client read model."""
from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from typing import cast

import sqlalchemy as sa
from pydantic import TypeAdapter
from sqlalchemy import CursorResult
from sqlalchemy.ext.asyncio import AsyncSession

from kontor.contracts.clients import ClientSnapshotV1
from kontor.contracts.common import Actor
from kontor.db import upsert_newer
from kontor.errors import Conflict, NotFound
from kontor_orders.adapters.orm import (
    attachments,
    confirmation_tokens,
    known_clients,
    order_comments,
    order_history,
    orders,
)
from kontor_orders.domain.model import ClientRef, Order

_ORDER = TypeAdapter(Order)


def client_ref(snapshot: dict) -> ClientRef:
    return ClientRef(id=uuid.UUID(str(snapshot["client_id"])), name=snapshot["name"], kind=snapshot["kind"],
                     vat_id=snapshot.get("vat_id"), country=snapshot["address"]["country"],
                     language=snapshot.get("language", "de"), standing=snapshot["standing"]["status"],
                     standing_reason=snapshot["standing"].get("reason"))


async def get_known_client(session: AsyncSession, client_id: uuid.UUID) -> ClientRef | None:
    row = (await session.execute(sa.select(known_clients.c.snapshot).where(known_clients.c.id == client_id))).first()
    return client_ref(row.snapshot) if row else None


async def upsert_known_client(session: AsyncSession, snapshot: ClientSnapshotV1) -> bool:
    """Apply a client snapshot unless a newer version is already known; True when applied."""
    return await upsert_newer(session, known_clients, dict(
        id=snapshot.client_id, name=snapshot.name, standing=snapshot.standing.status, version=snapshot.version,
        snapshot=snapshot.model_dump(mode="json")))


def _columns(order: Order) -> dict:
    return dict(member_id=order.member_id, client_id=order.client.id, status=order.status, version=order.version,
                offer_valid_until=order.confirmation.offer_valid_until if order.confirmation else None,
                service_end=order.service_end, data=_ORDER.dump_python(order, mode="json"))


async def add(session: AsyncSession, order: Order) -> None:
    await session.execute(orders.insert().values(id=order.id, created_at=order.created_at, **_columns(order)))


async def save(session: AsyncSession, order: Order, *, expected_version: int) -> None:
    result = cast(CursorResult, await session.execute(
        orders.update().where(orders.c.id == order.id, orders.c.version == expected_version)
        .values(**_columns(order), updated_at=sa.func.now())))
    if result.rowcount != 1:
        raise Conflict(f"order {order.id} was changed concurrently; reload and retry")


async def delete(session: AsyncSession, order_id: uuid.UUID) -> None:
    for table in (attachments, order_comments, order_history, confirmation_tokens):
        await session.execute(table.delete().where(table.c.order_id == order_id))
    await session.execute(orders.delete().where(orders.c.id == order_id))


async def get(session: AsyncSession, order_id: uuid.UUID, *, for_update: bool = False) -> Order:
    stmt = sa.select(orders.c.data).where(orders.c.id == order_id)
    if for_update:
        stmt = stmt.with_for_update()
    row = (await session.execute(stmt)).first()
    if row is None:
        raise NotFound("order", order_id)
    return _ORDER.validate_python(row.data)


async def list_orders(session: AsyncSession, *, member_id: str | None, statuses: Sequence[str] | None,
                      exclude_drafts: bool, limit: int | None, offset: int, oldest_first: bool = False) -> list[Order]:
    """Newest first (or oldest first); every matching order when `limit` is None."""
    created = orders.c.created_at.asc() if oldest_first else orders.c.created_at.desc()
    stmt = sa.select(orders.c.data).order_by(created, orders.c.id).offset(offset)
    if limit is not None:
        stmt = stmt.limit(limit)
    if member_id is not None:
        stmt = stmt.where(orders.c.member_id == member_id)
    if statuses:
        stmt = stmt.where(orders.c.status.in_(statuses))
    if exclude_drafts:
        stmt = stmt.where(orders.c.status != "draft")
    return [_ORDER.validate_python(r.data) for r in (await session.execute(stmt)).all()]


async def ids_for_runs(session: AsyncSession, *, as_of: dt.date, warn_days: int) -> dict[str, list[uuid.UUID]]:
    """Orders a run may change: offers to warn of or expire, active orders past their period."""
    in_confirmation = sa.select(orders.c.id).where(
        orders.c.status == "client_confirmation", orders.c.offer_valid_until <= as_of + dt.timedelta(days=warn_days))
    finished = sa.select(orders.c.id).where(orders.c.status == "active", orders.c.service_end < as_of)
    return {"confirmation": list((await session.execute(in_confirmation.order_by(orders.c.id))).scalars()),
            "active": list((await session.execute(finished.order_by(orders.c.id))).scalars())}


async def ids_for_contract_runs(session: AsyncSession) -> list[uuid.UUID]:
    """Active or completed recurring orders: their contracts may renew, remind, resume or finish."""
    recurring = sa.select(orders.c.id).where(
        orders.c.status.in_(("active", "completed")),
        orders.c.data["payment"]["mode"].as_string() == "recurring",
        sa.or_(orders.c.data["contract"].as_string().is_(None),
               orders.c.data["contract"]["state"].as_string().in_(("running", "paused"))))
    return list((await session.execute(recurring.order_by(orders.c.id))).scalars())


# -- history and comments ------------------------------------------------------------------

async def add_history(session: AsyncSession, order_id: uuid.UUID, *, at: dt.datetime, actor: Actor, action: str,
                      from_status: str | None, to_status: str, reason: str | None = None,
                      details: dict | list | None = None) -> None:
    await session.execute(order_history.insert().values(
        order_id=order_id, at=at, actor_kind=actor.kind, actor_id=actor.id, action=action, from_status=from_status,
        to_status=to_status, reason=reason, details=details))


async def history(session: AsyncSession, order_id: uuid.UUID) -> Sequence:
    return (await session.execute(
        sa.select(order_history).where(order_history.c.order_id == order_id).order_by(order_history.c.id))).all()


async def add_comment(session: AsyncSession, order_id: uuid.UUID, *, author_id: str, author_role: str, text: str,
                      at: dt.datetime):
    return (await session.execute(order_comments.insert().values(
        order_id=order_id, author_id=author_id, author_role=author_role, text=text, at=at)
        .returning(*order_comments.c))).one()


async def comments(session: AsyncSession, order_id: uuid.UUID) -> Sequence:
    return (await session.execute(
        sa.select(order_comments).where(order_comments.c.order_id == order_id).order_by(order_comments.c.id))).all()


# -- attachments ---------------------------------------------------------------------------

ATTACHMENT_META = [attachments.c[n] for n in ("id", "order_id", "filename", "media_type", "size", "sha256",
                                              "uploaded_by", "uploaded_at")]


async def add_attachment(session: AsyncSession, **values) -> None:
    await session.execute(attachments.insert().values(**values))


async def attachments_of(session: AsyncSession, order_id: uuid.UUID) -> Sequence:
    return (await session.execute(sa.select(*ATTACHMENT_META).where(attachments.c.order_id == order_id)
                                  .order_by(attachments.c.uploaded_at, attachments.c.filename))).all()


async def attachments_of_orders(session: AsyncSession, order_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, list]:
    """The documents of several orders in one query (lists of orders)."""
    rows = (await session.execute(
        sa.select(*ATTACHMENT_META).where(attachments.c.order_id.in_(order_ids))
        .order_by(attachments.c.uploaded_at, attachments.c.filename))).all() if order_ids else []
    found: dict[uuid.UUID, list] = {}
    for row in rows:
        found.setdefault(row.order_id, []).append(row)
    return found


async def get_attachment(session: AsyncSession, order_id: uuid.UUID, attachment_id: uuid.UUID):
    row = (await session.execute(sa.select(attachments).where(
        attachments.c.order_id == order_id, attachments.c.id == attachment_id))).first()
    if row is None:
        raise NotFound("attachment", attachment_id)
    return row


async def copy_attachments(session: AsyncSession, source: uuid.UUID, target: uuid.UUID, *, by: str,
                           at: dt.datetime) -> None:
    rows = (await session.execute(sa.select(attachments).where(attachments.c.order_id == source))).all()
    for r in rows:
        await session.execute(attachments.insert().values(
            id=uuid.uuid4(), order_id=target, filename=r.filename, media_type=r.media_type, size=r.size,
            sha256=r.sha256, content=r.content, uploaded_by=by, uploaded_at=at))


# -- confirmation tokens -------------------------------------------------------------------

async def add_token(session: AsyncSession, *, token_hash: str, order_id: uuid.UUID, valid_until: dt.datetime,
                    now: dt.datetime) -> None:
    await session.execute(confirmation_tokens.insert().values(
        token_hash=token_hash, order_id=order_id, valid_until=valid_until, created_at=now))


async def get_token(session: AsyncSession, token_hash: str, *, for_update: bool = False):
    stmt = sa.select(confirmation_tokens).where(confirmation_tokens.c.token_hash == token_hash)
    if for_update:
        stmt = stmt.with_for_update()
    return (await session.execute(stmt)).first()


async def use_token(session: AsyncSession, token_hash: str, *, outcome: str, now: dt.datetime) -> None:
    await session.execute(confirmation_tokens.update().where(confirmation_tokens.c.token_hash == token_hash)
                          .values(used_at=now, outcome=outcome))


async def retire_tokens(session: AsyncSession, order_id: uuid.UUID, *, outcome: str, now: dt.datetime) -> None:
    """Unused links of an order stop working (the order left client confirmation)."""
    await session.execute(confirmation_tokens.update().where(
        confirmation_tokens.c.order_id == order_id, confirmation_tokens.c.used_at.is_(None))
        .values(used_at=now, outcome=outcome))
