"""Loads and stores clients, their change and standing histories, receivables, the orders
known for each client, and standing runs; the only place that knows the table layout."""
from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from typing import cast

import sqlalchemy as sa
from sqlalchemy import CursorResult
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from kontor.contracts.common import Actor
from kontor.errors import Conflict, NotFound
from kontor_clients.adapters.orm import (
    client_changes,
    client_orders,
    client_search_terms,
    clients,
    receivables,
    standing_changes,
    standing_runs,
)
from kontor_clients.domain.identifiers import search_terms
from kontor_clients.domain.model import ORDERS_WITHOUT_EFFECT, Address, Client, Standing, Ties
from kontor_clients.domain.receivables import Receivable


def _to_row(c: Client) -> dict:
    return dict(
        id=c.id, kind=c.kind, name=c.name, name_key=c.name_key, street=c.address.street,
        postal_code=c.address.postal_code, city=c.address.city, country=c.address.country,
        subdivision=c.address.subdivision, vat_id=c.vat_id,
        leitweg_id=c.leitweg_id, invoice_email=c.invoice_email, language=c.language, zugferd=c.zugferd,
        standing=c.standing.status,
        standing_reason=c.standing.reason, standing_source=c.standing.source, standing_since=c.standing.since,
        standing_set_by=c.standing.set_by, version=c.version, created_by=c.created_by,
    )


def _from_row(r) -> Client:
    return Client(
        id=r.id, kind=r.kind, name=r.name,
        address=Address(street=r.street, postal_code=r.postal_code, city=r.city, country=r.country,
                        subdivision=r.subdivision),
        vat_id=r.vat_id, leitweg_id=r.leitweg_id, invoice_email=r.invoice_email, language=r.language, zugferd=r.zugferd,
        standing=Standing(status=r.standing, reason=r.standing_reason, source=r.standing_source,
                          since=r.standing_since, set_by=r.standing_set_by),
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


async def find_duplicate(session: AsyncSession, client: Client) -> Client | None:
    """An existing client with the same VAT id, or the same name at the same postal code."""
    same_place = sa.and_(clients.c.name_key == client.name_key, clients.c.postal_code == client.address.postal_code,
                         clients.c.country == client.address.country)
    condition = sa.or_(clients.c.vat_id == client.vat_id, same_place) if client.vat_id else same_place
    stmt = sa.select(clients).where(condition, clients.c.id != client.id).order_by(clients.c.created_at).limit(1)
    row = (await session.execute(stmt)).first()
    return _from_row(row) if row else None


async def _write_terms(session: AsyncSession, client: Client) -> None:
    await session.execute(client_search_terms.delete().where(client_search_terms.c.client_id == client.id))
    await session.execute(client_search_terms.insert(), [
        {"client_id": client.id, "position": i, "term": term} for i, term in enumerate(search_terms(client.name))
    ])


async def add(session: AsyncSession, client: Client) -> None:
    await session.execute(clients.insert().values(**_to_row(client)))
    await _write_terms(session, client)


async def add_many(session: AsyncSession, batch: Sequence[Client]) -> None:
    """Bulk registration (imports, benchmarks): one multi-row statement per table."""
    await session.execute(clients.insert(), [_to_row(c) for c in batch])
    await session.execute(client_search_terms.insert(), [
        {"client_id": c.id, "position": i, "term": term} for c in batch for i, term in enumerate(search_terms(c.name))
    ])


async def save(session: AsyncSession, client: Client, *, name_changed: bool = False) -> None:
    """Store a changed client; its version must be exactly one more than the stored one."""
    result = cast(CursorResult, await session.execute(
        clients.update()
        .where(clients.c.id == client.id, clients.c.version == client.version - 1)
        .values(**_to_row(client), updated_at=sa.func.now())
    ))
    if result.rowcount != 1:
        raise Conflict(f"client {client.id} was changed concurrently; reload and retry")
    if name_changed:
        await _write_terms(session, client)


def _prefix_pattern(key: str) -> str:
    escaped = key.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped + "%"


async def search(session: AsyncSession, key: str, *, limit: int) -> list[Client]:
    """Clients whose name starts with `key` (a search key), then those with a later word
    starting with it; each part is one ordered range scan of an index, whatever the size
    of the registry."""
    pattern = _prefix_pattern(key)
    whole = (await session.execute(
        sa.select(clients).where(clients.c.name_key.like(pattern, escape="\\"))
        .order_by(clients.c.name_key, clients.c.postal_code, clients.c.country).limit(limit)
    )).all()
    found = [_from_row(r) for r in whole]
    if len(found) < limit:
        seen = {c.id for c in found}
        rows = (await session.execute(
            sa.select(clients)
            .join(client_search_terms, client_search_terms.c.client_id == clients.c.id)
            .where(client_search_terms.c.term.like(pattern, escape="\\"), client_search_terms.c.position > 0)
            .order_by(client_search_terms.c.term, clients.c.id)
            .limit(2 * limit)  # one client can match with several words
        )).all()
        for r in rows:
            if r.id not in seen and len(found) < limit:
                seen.add(r.id)
                found.append(_from_row(r))
    return found


# -- change history -----------------------------------------------------------------------

async def add_change(session: AsyncSession, client: Client, *, action: str, actor: Actor, changes: dict,
                     at: dt.datetime) -> None:
    await session.execute(client_changes.insert().values(
        client_id=client.id, client_version=client.version, action=action, actor_kind=actor.kind,
        actor_id=actor.id, actor_name=actor.name, changes=changes, changed_at=at))


async def change_history(session: AsyncSession, client_id: uuid.UUID) -> Sequence:
    return (await session.execute(
        sa.select(client_changes).where(client_changes.c.client_id == client_id).order_by(client_changes.c.id)
    )).all()


# -- who relies on a client's billing data -------------------------------------------------

async def record_order(session: AsyncSession, *, order_id: uuid.UUID, client_id: uuid.UUID, member_id: str,
                       status: str, version: int) -> None:
    """The order's latest known state; an event of an older version than the stored one changes nothing."""
    stmt = pg_insert(client_orders).values(order_id=order_id, client_id=client_id, member_id=member_id,
                                           status=status, order_version=version)
    await session.execute(stmt.on_conflict_do_update(
        index_elements=[client_orders.c.order_id],
        set_={"client_id": stmt.excluded.client_id, "member_id": stmt.excluded.member_id,
              "status": stmt.excluded.status, "order_version": stmt.excluded.order_version,
              "updated_at": sa.func.now()},
        where=client_orders.c.order_version <= stmt.excluded.order_version,
    ))


async def ties_of(session: AsyncSession, client_id: uuid.UUID) -> Ties:
    issued = (await session.execute(
        sa.select(sa.func.count()).select_from(receivables).where(receivables.c.client_id == client_id)
    )).scalar_one()
    members = (await session.execute(
        sa.select(client_orders.c.member_id).distinct()
        .where(client_orders.c.client_id == client_id, client_orders.c.status.not_in(ORDERS_WITHOUT_EFFECT))
    )).scalars().all()
    return Ties(issued_invoices=issued, members_with_orders=frozenset(members))


# -- standing history ---------------------------------------------------------------------

async def add_standing_change(session: AsyncSession, client: Client, previous: Standing, *,
                              run_id: uuid.UUID | None = None) -> None:
    s = client.standing
    await session.execute(standing_changes.insert().values(
        client_id=client.id, status=s.status, reason=s.reason, source=s.source, set_by=s.set_by,
        previous_status=previous.status, previous_source=previous.source, client_version=client.version,
        run_id=run_id, changed_at=s.since,
    ))


async def standing_history(session: AsyncSession, client_id: uuid.UUID) -> Sequence:
    return (await session.execute(
        sa.select(standing_changes).where(standing_changes.c.client_id == client_id).order_by(standing_changes.c.id)
    )).all()


# -- receivables ---------------------------------------------------------------------------

def _receivable(r) -> Receivable:
    return Receivable(invoice_id=r.invoice_id, client_id=r.client_id, number=r.number, currency=r.currency,
                      amount_due=r.amount_due, issue_date=r.issue_date, due_date=r.due_date,
                      paid_total=r.paid_total, status=r.status, refund_due=r.refund_due)


async def get_receivable(session: AsyncSession, invoice_id: uuid.UUID) -> Receivable | None:
    row = (await session.execute(
        sa.select(receivables).where(receivables.c.invoice_id == invoice_id).with_for_update()
    )).first()
    return _receivable(row) if row else None


async def add_receivable(session: AsyncSession, r: Receivable, *, order_id: uuid.UUID, member_id: str) -> None:
    await session.execute(receivables.insert().values(
        invoice_id=r.invoice_id, client_id=r.client_id, order_id=order_id, member_id=member_id, number=r.number,
        currency=r.currency, amount_due=r.amount_due, paid_total=r.paid_total, refund_due=r.refund_due,
        issue_date=r.issue_date, due_date=r.due_date, status=r.status,
    ))


async def save_receivable(session: AsyncSession, r: Receivable) -> None:
    await session.execute(receivables.update().where(receivables.c.invoice_id == r.invoice_id).values(
        paid_total=r.paid_total, refund_due=r.refund_due, status=r.status, updated_at=sa.func.now()))


async def receivables_of(session: AsyncSession, client_id: uuid.UUID, *,
                         open_due_before: dt.date | None = None) -> list[Receivable]:
    """The client's receivables; with `open_due_before`, only the open ones due before that day."""
    query = sa.select(receivables).where(receivables.c.client_id == client_id)
    if open_due_before is not None:
        query = query.where(receivables.c.status == "open", receivables.c.due_date < open_due_before)
    rows = (await session.execute(query.order_by(receivables.c.due_date, receivables.c.number))).all()
    return [_receivable(r) for r in rows]


async def clients_to_evaluate(session: AsyncSession) -> list[uuid.UUID]:
    """Clients the debt rule may change: those with open invoices, or restricted by the rule."""
    with_debt = sa.select(receivables.c.client_id).where(receivables.c.status == "open")
    by_rule = sa.select(clients.c.id).where(clients.c.standing_source == "debt_rule", clients.c.standing != "ok")
    rows = (await session.execute(sa.union(with_debt, by_rule))).all()
    return sorted(r[0] for r in rows)


# -- standing runs ------------------------------------------------------------------------

async def start_run(session: AsyncSession, *, as_of: dt.date, trigger: str, requested_by: str | None,
                    now: dt.datetime) -> uuid.UUID | None:
    """Record a run; None if the scheduled run of that day is already taken (by any replica)."""
    run_id = uuid.uuid4()
    stmt = pg_insert(standing_runs).values(
        id=run_id, as_of=as_of, trigger=trigger, requested_by=requested_by, started_at=now)
    if trigger == "scheduled":
        stmt = stmt.on_conflict_do_nothing(index_elements=["as_of"], index_where=sa.text("trigger = 'scheduled'"))
    result = await session.execute(stmt.returning(standing_runs.c.id))
    return result.scalar_one_or_none()


async def finish_run(session: AsyncSession, run_id: uuid.UUID, *, evaluated: int, restricted: int, lifted: int,
                     now: dt.datetime) -> None:
    await session.execute(standing_runs.update().where(standing_runs.c.id == run_id).values(
        evaluated=evaluated, restricted=restricted, lifted=lifted, finished_at=now))


async def get_run(session: AsyncSession, run_id: uuid.UUID):
    row = (await session.execute(sa.select(standing_runs).where(standing_runs.c.id == run_id))).first()
    if row is None:
        raise NotFound("standing run", run_id)
    return row


async def recent_runs(session: AsyncSession, limit: int = 50) -> Sequence:
    return (await session.execute(
        sa.select(standing_runs).order_by(standing_runs.c.started_at.desc(), standing_runs.c.as_of.desc())
        .limit(limit))).all()


async def latest_run_date(session: AsyncSession) -> dt.date | None:
    """The latest date the debt rule was run as of: the rule's date never goes back."""
    return (await session.execute(sa.select(sa.func.max(standing_runs.c.as_of)))).scalar_one()
