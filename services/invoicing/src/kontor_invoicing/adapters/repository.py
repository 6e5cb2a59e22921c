"""Loads and stores invoices (as documents), planned invoices, numbering, documents and
the read models of clients and orders."""
from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Sequence
from typing import cast

import sqlalchemy as sa
from pydantic import TypeAdapter
from sqlalchemy import CursorResult
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from kontor.db import upsert_newer
from kontor.errors import Conflict, NotFound
from kontor_invoicing.adapters.orm import (
    billing_run_progress,
    billing_runs,
    invoice_attachments,
    invoice_counters,
    invoice_documents,
    invoices,
    known_clients,
    known_orders,
    planned_invoices,
)
from kontor_invoicing.domain.model import Invoice, reminder_cutoff

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


async def due_plans(session: AsyncSession, *, until: dt.date, limit: int) -> Sequence:
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


async def replan_open(session: AsyncSession, order_id: uuid.UUID, plans: list[dict]) -> tuple[int, ...]:
    """The order's planned invoices not drafted yet take their new plan (e.g. a price changed from a date on); a
    plan already drafted keeps what it was drafted from. The seqs replanned."""
    replanned: list[int] = []
    for p in plans:
        result = cast(CursorResult, await session.execute(planned_invoices.update().where(
            planned_invoices.c.order_id == order_id, planned_invoices.c.seq == p["seq"],
            planned_invoices.c.status == "planned").values(
            plan=p, invoice_date=dt.date.fromisoformat(p["invoice_date"]), updated_at=sa.func.now())))
        if result.rowcount:
            replanned.append(p["seq"])
    return tuple(replanned)


async def drop_open_plans(session: AsyncSession, order_id: uuid.UUID, *,
                          keep: Sequence[int] | None = None) -> int:
    """The order's plans not drafted yet are dropped (all, or those whose seq is not in `keep`)."""
    where = [planned_invoices.c.order_id == order_id, planned_invoices.c.status == "planned"]
    if keep is not None:
        where.append(planned_invoices.c.seq.not_in(list(keep)))
    result = cast(CursorResult, await session.execute(planned_invoices.update().where(*where).values(
        status="dropped", updated_at=sa.func.now())))
    return result.rowcount


# -- invoices ------------------------------------------------------------------------------

def _columns(inv: Invoice) -> dict:
    return dict(order_id=inv.order_id, member_id=inv.member_id, client_id=inv.client_id, seq=inv.seq, kind=inv.kind,
                status=inv.status, number=inv.number, invoice_date=inv.invoice_date, due_date=inv.due_date,
                reminders_sent=inv.reminders_sent, run_id=inv.run_id, version=inv.version,
                data=_INVOICE.dump_python(inv, mode="json"))


async def add(session: AsyncSession, inv: Invoice) -> bool:
    """Insert; False when this planned invoice already has one (another replica was first)."""
    stmt = insert(invoices).values(id=inv.id, created_at=inv.created_at, **_columns(inv))
    if inv.kind == "invoice":
        stmt = stmt.on_conflict_do_nothing(index_elements=["order_id", "seq"],
                                           index_where=sa.text("kind = 'invoice'"))
    return (await session.execute(stmt.returning(invoices.c.id))).first() is not None


async def save(session: AsyncSession, inv: Invoice, *, expected_version: int, claim: dict | None = None) -> None:
    """`claim`: the claim to set with it (`claim_columns`), in the same statement."""
    result = cast(CursorResult, await session.execute(invoices.update().where(
        invoices.c.id == inv.id, invoices.c.version == expected_version).values(
        **_columns(inv), **(claim or {}), updated_at=sa.func.now())))
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
    if not schedule:
        return []
    rows = (await session.execute(
        sa.select(invoices.c.data).where(_reminders_due_where(as_of, schedule))
        .order_by(invoices.c.due_date, invoices.c.id).limit(limit).with_for_update(skip_locked=True))).all()
    return [_INVOICE.validate_python(r.data) for r in rows]


def _reminders_due_where(as_of: dt.date, schedule: Sequence[int]):
    steps = [sa.and_(invoices.c.reminders_sent == k, invoices.c.due_date <= cutoff) if cutoff is not None
             else sa.false() for k, cutoff in enumerate(reminder_cutoff(as_of, days) for days in schedule)]
    return sa.and_(invoices.c.status == "invoiced", invoices.c.kind == "invoice", sa.or_(*steps),
                   invoices.c.data["cancelled_by"].astext.is_(None))  # not while a cancellation is under way


# -- issuing ---------------------------------------------------------------------------------

def _lease(seconds: float):
    """Leases run on the database's clock (one clock for every worker; not the business clock,
    which tests and "as of" runs fix)."""
    return sa.func.now() + dt.timedelta(seconds=seconds)


_FREE = sa.or_(invoices.c.claimed_until.is_(None), invoices.c.claimed_until < sa.func.now())


async def claim_to_prepare(session: AsyncSession, *, lease_s: float, limit: int) -> list[Invoice]:
    """Invoices queued for issuing and not numbered yet, claimed for `lease_s` by the caller (who
    prepares and checks them outside any lock); a claim of a worker that died runs out."""
    free = _FREE
    pick = (sa.select(invoices.c.id).where(invoices.c.status == "issuing", invoices.c.number.is_(None), free)
            .order_by(invoices.c.invoice_date, invoices.c.created_at, invoices.c.id).limit(limit)
            .with_for_update(skip_locked=True).scalar_subquery())
    rows = (await session.execute(invoices.update().where(invoices.c.id.in_(pick))
                                  .values(claimed_until=_lease(lease_s))
                                  .returning(invoices.c.data))).all()
    return [_INVOICE.validate_python(r.data) for r in rows]


async def lock(session: AsyncSession, ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, Invoice]:
    rows = (await session.execute(sa.select(invoices.c.data).where(invoices.c.id.in_(list(ids)))
                                  .order_by(invoices.c.id).with_for_update())).all()
    found = [_INVOICE.validate_python(r.data) for r in rows]
    return {i.id: i for i in found}


async def claim_to_render(session: AsyncSession, *, invoice_id: uuid.UUID | None = None) -> Invoice | None:
    """A numbered invoice whose documents are still to be made, locked until the caller's
    transaction ends (the render, the documents and the status commit together). With an id,
    that one (if nobody else holds it); else any whose claim has run out (a worker died, or an
    earlier render failed and waits for its retry)."""
    stmt = sa.select(invoices.c.data).where(invoices.c.status == "issuing", invoices.c.number.is_not(None))
    if invoice_id is not None:
        stmt = stmt.where(invoices.c.id == invoice_id)
    else:
        stmt = stmt.where(_FREE)
    row = (await session.execute(stmt.order_by(invoices.c.number).limit(1).with_for_update(skip_locked=True))).first()
    return _INVOICE.validate_python(row.data) if row else None


async def set_claim(session: AsyncSession, ids: Sequence[uuid.UUID], *, for_s: float | None,
                    step_done: bool = False) -> None:
    """Claim these for `for_s` seconds from now (None: release them). `step_done`: a step succeeded,
    so the failed attempts before it no longer count."""
    if ids:
        await session.execute(invoices.update().where(invoices.c.id.in_(list(ids)))
                              .values(**claim_columns(for_s=for_s, step_done=step_done)))


def claim_columns(*, for_s: float | None, step_done: bool = False) -> dict:
    """The columns `set_claim` sets, for `save` to set with an invoice."""
    values = {"claimed_until": None if for_s is None else _lease(for_s)}
    if step_done:
        values["render_attempts"] = 0
    return values


async def render_failed(session: AsyncSession, invoice_id: uuid.UUID, *, error: str) -> int:
    """Count a failed check or render of the invoice; the attempts so far."""
    return (await session.execute(invoices.update().where(invoices.c.id == invoice_id).values(
        render_attempts=invoices.c.render_attempts + 1, render_error=error[:2000])
        .returning(invoices.c.render_attempts))).scalar_one()


async def take_numbers(session: AsyncSession, year: int, count: int) -> int:
    """The first of `count` consecutive numbers of the year. The counter row stays locked until
    the transaction ends, so a rolled-back issue never leaves a gap and two workers never share
    a number; the transaction holding it is kept short."""
    stmt = insert(invoice_counters).values(year=year, last_number=count)
    stmt = stmt.on_conflict_do_update(index_elements=["year"],
                                      set_={"last_number": invoice_counters.c.last_number + count})
    return (await session.execute(stmt.returning(invoice_counters.c.last_number))).scalar_one() - count + 1


# -- billing runs ----------------------------------------------------------------------------

async def create_run(session: AsyncSession, values: dict) -> tuple[dict, bool]:
    """A new queued run, or (False) the queued or running one of the same as-of."""
    stmt = insert(billing_runs).values(**values).on_conflict_do_nothing(
        index_elements=["as_of"], index_where=sa.text("status IN ('queued', 'running')")).returning(billing_runs)
    row = (await session.execute(stmt)).first()
    if row is not None:
        return row._asdict(), True
    row = (await session.execute(sa.select(billing_runs).where(
        billing_runs.c.as_of == values["as_of"], billing_runs.c.status.in_(("queued", "running"))))).first()
    if row is None:  # it finished in between: ask again
        return await create_run(session, values)
    return row._asdict(), False


async def get_run(session: AsyncSession, run_id: uuid.UUID, *, for_update: bool = False) -> dict:
    stmt = sa.select(billing_runs).where(billing_runs.c.id == run_id)
    if for_update:
        stmt = stmt.with_for_update()
    row = (await session.execute(stmt)).first()
    if row is None:
        raise NotFound("billing run", run_id)
    return row._asdict()


async def list_runs(session: AsyncSession, *, limit: int, offset: int) -> list[dict]:
    rows = (await session.execute(sa.select(billing_runs).order_by(billing_runs.c.created_at.desc(),
                                                                   billing_runs.c.seq.desc()).limit(limit).offset(offset)))
    return [r._asdict() for r in rows.all()]


async def active_runs(session: AsyncSession) -> list[dict]:
    rows = await session.execute(sa.select(billing_runs).where(billing_runs.c.status.in_(("queued", "running")))
                                 .order_by(billing_runs.c.created_at, billing_runs.c.seq))
    return [r._asdict() for r in rows.all()]


async def update_run(session: AsyncSession, run_id: uuid.UUID, **values) -> None:
    await session.execute(billing_runs.update().where(billing_runs.c.id == run_id).values(**values))


async def add_run_error(session: AsyncSession, run_id: uuid.UUID, error: dict, *, keep: int = 50) -> None:
    """Remember an error of the run (the latest `keep`)."""
    await session.execute(sa.text(
        "UPDATE billing_runs SET errors = (SELECT coalesce(jsonb_agg(e), '[]') FROM (SELECT e FROM "
        "jsonb_array_elements(errors || jsonb_build_array(CAST(:error AS jsonb))) WITH ORDINALITY AS x(e, n) "
        "ORDER BY n DESC LIMIT :keep) AS latest) WHERE id = :id"),
        {"error": json.dumps(error), "keep": keep, "id": run_id})


async def count_progress(session: AsyncSession, run_id: uuid.UUID | None, worker: str, **counts: int) -> None:
    """Add what this worker did for the run, in the transaction that did it."""
    if run_id is None or not any(counts.values()):
        return
    stmt = insert(billing_run_progress).values(run_id=run_id, worker=worker, **counts)
    stmt = stmt.on_conflict_do_update(
        index_elements=["run_id", "worker"],
        set_={**{k: billing_run_progress.c[k] + stmt.excluded[k] for k in counts}, "updated_at": sa.func.now()})
    await session.execute(stmt)


PROGRESS = ("drafted", "queued", "issued", "held", "reminded")


async def run_progress(session: AsyncSession, run_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, dict]:
    rows = (await session.execute(
        sa.select(billing_run_progress.c.run_id, sa.func.count().label("workers"),
                  *(sa.func.sum(billing_run_progress.c[k]).label(k) for k in PROGRESS))
        .where(billing_run_progress.c.run_id.in_(list(run_ids))).group_by(billing_run_progress.c.run_id))).all()
    return {r.run_id: {k: int(getattr(r, k) or 0) for k in (*PROGRESS, "workers")} for r in rows}


async def run_remaining(session: AsyncSession, *, run_id: uuid.UUID, as_of: dt.date, draft_until: dt.date,
                        schedule: Sequence[int], max_render_attempts: int) -> dict[str, int]:
    """What is still to do for a run, as committed now (rows others are working on count)."""
    def count(table, *where):
        return sa.select(sa.func.count()).select_from(table).where(*where).scalar_subquery()

    row = (await session.execute(sa.select(
        count(planned_invoices, planned_invoices.c.status == "planned",
              planned_invoices.c.invoice_date <= draft_until).label("to_draft"),
        count(invoices, invoices.c.status == "draft", invoices.c.kind == "invoice",
              invoices.c.invoice_date <= as_of).label("to_queue"),
        count(invoices, invoices.c.status == "issuing", invoices.c.run_id == run_id,
              invoices.c.render_attempts < max_render_attempts).label("to_issue"),
        count(invoices, invoices.c.status == "issuing", invoices.c.run_id == run_id,
              invoices.c.render_attempts >= max_render_attempts).label("stuck"),
        (count(invoices, _reminders_due_where(as_of, schedule)) if schedule else sa.literal(0)).label("to_remind"),
    ))).one()
    return dict(row._mapping)


async def list_invoices(session: AsyncSession, *, member_id: str | None, statuses: Sequence[str] | None,
                        order_id: uuid.UUID | None, limit: int, offset: int,
                        kind: str | None = None) -> list[Invoice]:
    stmt = sa.select(invoices.c.data).order_by(invoices.c.created_at.desc(), invoices.c.id).limit(limit).offset(offset)
    if member_id is not None:
        stmt = stmt.where(invoices.c.member_id == member_id)
    if statuses:
        stmt = stmt.where(invoices.c.status.in_(statuses))
    if order_id is not None:
        stmt = stmt.where(invoices.c.order_id == order_id)
    if kind is not None:
        stmt = stmt.where(invoices.c.kind == kind)
    return [_INVOICE.validate_python(r.data) for r in (await session.execute(stmt)).all()]


async def of_order(session: AsyncSession, order_id: uuid.UUID) -> list[Invoice]:
    rows = (await session.execute(sa.select(invoices.c.data).where(invoices.c.order_id == order_id)
                                  .order_by(invoices.c.seq, invoices.c.created_at))).all()
    return [_INVOICE.validate_python(r.data) for r in rows]


# -- documents -------------------------------------------------------------------------------

async def add_documents(session: AsyncSession, invoice_id: uuid.UUID, documents: Sequence, *,
                        now: dt.datetime) -> None:
    """Store the invoice's rendered documents (each with kind, filename, media_type, sha256, content)."""
    if documents:
        await session.execute(invoice_documents.insert().values([
            {"invoice_id": invoice_id, "kind": d.kind, "filename": d.filename, "media_type": d.media_type,
             "sha256": d.sha256, "content": d.content, "created_at": now} for d in documents]))


async def get_document(session: AsyncSession, invoice_id: uuid.UUID, kind: str):
    """The invoice's owner and status with its document of `kind` (its columns None when it has
    none), in one query: the documents are fetched for every e-mail. NotFound without the invoice."""
    row = (await session.execute(
        sa.select(invoices.c.member_id, invoices.c.status, invoice_documents.c.filename,
                  invoice_documents.c.media_type, invoice_documents.c.sha256, invoice_documents.c.content)
        .select_from(invoices.outerjoin(invoice_documents, sa.and_(
            invoice_documents.c.invoice_id == invoices.c.id, invoice_documents.c.kind == kind)))
        .where(invoices.c.id == invoice_id))).first()
    if row is None:
        raise NotFound("invoice", invoice_id)
    return row


# -- files added to a draft ------------------------------------------------------------------

ATTACHMENT_META = [invoice_attachments.c[n] for n in ("id", "invoice_id", "filename", "media_type", "size", "sha256",
                                                      "uploaded_by", "uploaded_at")]


async def add_attachment(session: AsyncSession, **values) -> None:
    await session.execute(invoice_attachments.insert().values(**values))


async def attachments_of(session: AsyncSession, invoice_id: uuid.UUID) -> Sequence:
    """The invoice's files without their bytes, in the order they were added (at the same instant: by name)."""
    return (await session.execute(sa.select(*ATTACHMENT_META).where(invoice_attachments.c.invoice_id == invoice_id)
                                  .order_by(invoice_attachments.c.uploaded_at, invoice_attachments.c.filename,
                                            invoice_attachments.c.id))).all()


async def get_attachment(session: AsyncSession, invoice_id: uuid.UUID, attachment_id: uuid.UUID):
    row = (await session.execute(sa.select(invoice_attachments).where(
        invoice_attachments.c.invoice_id == invoice_id, invoice_attachments.c.id == attachment_id))).first()
    if row is None:
        raise NotFound("attachment", attachment_id)
    return row


async def delete_attachment(session: AsyncSession, invoice_id: uuid.UUID, attachment_id: uuid.UUID) -> None:
    deleted = (await session.execute(invoice_attachments.delete().where(
        invoice_attachments.c.invoice_id == invoice_id, invoice_attachments.c.id == attachment_id)
        .returning(invoice_attachments.c.id))).first()
    if deleted is None:
        raise NotFound("attachment", attachment_id)
