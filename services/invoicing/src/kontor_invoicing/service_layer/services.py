"""Use cases of the invoicing service. Each runs in one transaction with its outbox events;
the steps of billing runs take a batch of planned invoices, drafts or invoices per transaction,
locked with SKIP LOCKED, so several replicas share the work and never do the same thing twice.
Issuing itself (check, number, render) is `service_layer.issuing`; the runs as jobs are
`service_layer.runs`.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import uuid
from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from kontor import attachments
from kontor.auth import Principal
from kontor.clock import Clock, business_today
from kontor.contracts.common import Actor
from kontor.contracts.invoices import (
    DeductedInvoiceV1,
    InvoiceChangeRequestedV1,
    InvoiceDisputedV1,
    InvoiceDocumentV1,
    InvoiceDraftCreatedV1,
    InvoiceLineV1,
    InvoicePaidV1,
    InvoicePaymentRecordedV1,
    InvoiceReminderSentV1,
    InvoiceV1,
    VatBreakdownV1,
)
from kontor.contracts.orders import OrderV1
from kontor.envelope import Envelope
from kontor.errors import Conflict, Forbidden, InvalidInput, NotFound
from kontor.logging import get_logger
from kontor.outbox import Outbox
from kontor_invoicing.adapters import repository
from kontor_invoicing.domain import model
from kontor_invoicing.settings import InvoicingSettings

log = get_logger(__name__)
SYSTEM = Actor(kind="system", id="invoicing", name="billing run")


@dataclass
class Deps:
    outbox: Outbox
    clock: Clock
    settings: InvoicingSettings

    @property
    def today(self) -> dt.date:
        return business_today(self.clock)

    @property
    def latest_business_date(self) -> dt.date | None:
        """The latest date anything may be dated as of (a run, a payment): today, or no limit
        when the deployment plays the future through (demos, tests)."""
        return None if self.settings.allow_future_as_of else self.today


def published(inv: model.Invoice, base_url: str = "") -> InvoiceV1:
    return InvoiceV1(
        invoice_id=inv.id, number=inv.number, kind=inv.kind, order_id=inv.order_id, member_id=inv.member_id,
        client_id=inv.client_id, client_name=inv.buyer.get("name", ""), currency=inv.currency,
        issue_date=inv.issue_date, due_date=inv.due_date, invoice_date=inv.invoice_date, status=inv.status,
        reminders_sent=inv.reminders_sent, prepaid_amount=inv.prepaid_amount, project_name=inv.project_name,
        contact_name=inv.contact_name, contact_email=inv.contact_email, invoice_email=inv.buyer.get("invoice_email"),
        language=inv.buyer.get("language"), service_period_start=inv.service_period_start,
        service_period_end=inv.service_period_end, net_total=inv.net_total, tax_total=inv.tax_total,
        gross_total=inv.gross_total, amount_due=inv.amount_due,
        vat_breakdown=tuple(VatBreakdownV1(category=v.category, rate=v.rate, taxable_amount=v.taxable_amount,
                                           tax_amount=v.tax_amount, exemption_reason=v.note)
                            for v in inv.vat_breakdown),
        lines=tuple(InvoiceLineV1(position=i, description=ln.description, quantity=ln.quantity, unit=ln.unit,
                                  unit_price=ln.unit_price, net_amount=ln.net_amount, vat_category=ln.vat_category,
                                  vat_rate=ln.vat_rate) for i, ln in enumerate(inv.lines, start=1)),
        documents=tuple(InvoiceDocumentV1(kind=d.kind, filename=d.filename, media_type=d.media_type, sha256=d.sha256,
                                          url=f"{base_url}/invoices/{inv.id}/{_document_path(d)}",
                                          attachment_id=d.attachment_id, size=d.size)
                        for d in inv.documents),
        cancels_invoice_id=inv.cancels_invoice_id, cancels_number=inv.cancels_number,
        tax_total_eur=inv.tax_total_eur, exchange_rate_eur=inv.exchange_rate_eur if inv.currency != "EUR" else None,
        exchange_rate_date=inv.exchange_rate_date if inv.currency != "EUR" else None,
        schedule_kind=inv.schedule_kind, installments=inv.installments,
        deductions=tuple(DeductedInvoiceV1(invoice_id=d.invoice_id, number=d.number, issue_date=d.issue_date,
                                           net_amount=d.net_amount, vat_breakdown=tuple(_vat(v) for v in d.vat),
                                           gross_amount=d.gross_amount) for d in inv.deductions),
    )


def _vat(v: model.VatBreakdown) -> VatBreakdownV1:
    return VatBreakdownV1(category=v.category, rate=v.rate, taxable_amount=v.taxable_amount, tax_amount=v.tax_amount,
                          exemption_reason=v.note)


def _document_path(d: model.Document) -> str:
    if d.kind == "attachment":
        return f"attachments/{d.attachment_id}"
    return "pdf" if d.kind == "pdf" else "xrechnung.xml"


def _common(inv: model.Invoice, actor: Actor, now: dt.datetime) -> dict:
    return dict(invoice_id=inv.id, client_id=inv.client_id, order_id=inv.order_id, member_id=inv.member_id,
                occurred_at=now, actor=actor)


async def _save(session: AsyncSession, before: model.Invoice, after: model.Invoice, *,
                claim: dict | None = None) -> None:
    await repository.save(session, after, expected_version=before.version, claim=claim)


# -- read models from events ----------------------------------------------------------------

async def remember_client(session: AsyncSession, snapshot) -> None:
    await repository.upsert_known_client(session, {
        "id": snapshot.client_id, "version": snapshot.version, "snapshot": snapshot.model_dump(mode="json")})


async def remember_order(session: AsyncSession, order: OrderV1) -> None:
    await repository.upsert_known_order(session, {
        "id": order.order_id, "member_id": order.member_id, "client_id": order.client.client_id,
        "status": order.status, "version": order.version, "data": order.model_dump(mode="json")})


async def plan_order(session: AsyncSession, order: OrderV1) -> int:
    await remember_order(session, order)
    planned = await repository.add_plans(session, order.order_id, [p.model_dump(mode="json") for p in order.schedule])
    log.info("order planned", order_id=str(order.order_id), planned=planned, schedule=len(order.schedule))
    return planned


async def replan_order(session: AsyncSession, order: OrderV1, seqs: tuple[int, ...]) -> tuple[int, ...]:
    """The order's planned invoices `seqs` changed (a price changed from a date on): those not drafted yet are
    replanned; one drafted already is named in the log (the orders service refuses changes to what may be
    invoiced, so this happens only when a run drafted ahead of the business day)."""
    await remember_order(session, order)
    plans = [p.model_dump(mode="json") for p in order.schedule if p.seq in seqs]
    replanned = await repository.replan_open(session, order.order_id, plans)
    if missed := sorted(set(seqs) - set(replanned)):
        log.warning("planned invoices drafted before their change", order_id=str(order.order_id), seqs=missed)
    log.info("order replanned", order_id=str(order.order_id), replanned=list(replanned))
    return replanned


async def follow_schedule(session: AsyncSession, order: OrderV1) -> tuple[int, int]:
    """The order's contract changed (issue 22: renewed, paused, resumed): planned invoices new in its schedule
    are planned, open plans no longer in it (a paused period) dropped; what is drafted stays. (added, dropped)"""
    await remember_order(session, order)
    added = await repository.add_plans(session, order.order_id, [p.model_dump(mode="json") for p in order.schedule])
    dropped = await repository.drop_open_plans(session, order.order_id, keep=[p.seq for p in order.schedule])
    log.info("order schedule followed", order_id=str(order.order_id), added=added, dropped=dropped)
    return added, dropped


async def order_cancelled(session: AsyncSession, deps: Deps, order: OrderV1, cancel_invoice_ids, reason: str,
                          envelope: Envelope, actor: Actor = SYSTEM) -> None:
    """Undrafted plans are dropped; what happens to the invoices is the domain's rule."""
    await remember_order(session, order)
    dropped = await repository.drop_open_plans(session, order.order_id)
    decided = model.order_cancelled(await repository.of_order(session, order.order_id), cancel_invoice_ids)
    for inv in decided.discard:
        current = await repository.get(session, inv.id, for_update=True)
        await _save(session, current, model.discard(current))
    for inv in decided.cancel:
        await _request_cancellation(session, deps, inv.id, reason=f"order cancelled: {reason}", actor=actor)
    log.info("order cancelled", order_id=str(order.order_id), plans_dropped=dropped,
             drafts_discarded=len(decided.discard), invoices_cancelled=len(decided.cancel))


# -- drafts -----------------------------------------------------------------------------------

async def create_due_drafts(session_factory: async_sessionmaker[AsyncSession], deps: Deps, *, as_of: dt.date,
                            run_id: uuid.UUID | None = None, worker: str = "") -> int:
    """Drafts of the planned invoices due within the lead days, a batch per transaction
    (planned invoices locked with SKIP LOCKED, so replicas share them)."""
    until = model.days_after(as_of, deps.settings.draft_lead_days)
    created = 0
    while True:
        async with session_factory.begin() as session:
            plans = await repository.due_plans(session, until=until, limit=deps.settings.billing_batch_size)
            if not plans:
                return created
            batch = 0
            for row in plans:
                order = await repository.known_order(session, row.order_id)
                if order is None or order["status"] in ("cancelled",):
                    await repository.mark_plan(session, row.order_id, row.seq, "dropped")
                    continue
                client = await repository.known_client(session, uuid.UUID(order["client"]["client_id"]))
                now = deps.clock.now()
                draft = model.draft_from_plan(row.plan, order, client, invoice_id=uuid.uuid4(), now=now)
                if await repository.add(session, draft):
                    await deps.outbox.add(session, InvoiceDraftCreatedV1(
                        **_common(draft, SYSTEM, now), invoice=published(draft),
                        check_until=model.days_after(draft.invoice_date, -1)), time=now)
                    batch += 1
                await repository.mark_plan(session, row.order_id, row.seq, "drafted")
            await repository.count_progress(session, run_id, worker, drafted=batch)
            created += batch
        log.info("drafts created", created=created, as_of=as_of.isoformat())


async def queue_due_drafts(session_factory: async_sessionmaker[AsyncSession], deps: Deps, *, as_of: dt.date,
                           run_id: uuid.UUID | None = None, worker: str = "") -> int:
    """Drafts nobody acted on are issued on their invoice date: queued for the issuing workers,
    as of the run's date, a batch per transaction (SKIP LOCKED). A draft the domain refuses to
    issue as of that date (its due date would not exist) waits for an advisor, as one failing
    the X-Rechnung rules does: the run goes on without it."""
    queued = 0
    while True:
        async with session_factory.begin() as session:
            due = await repository.lock_drafts_due(session, until=as_of, limit=deps.settings.billing_batch_size)
            if not due:
                return queued
            held = 0
            for current in due:
                try:
                    after = model.queue_issue(current, on=as_of, run_id=run_id)
                except InvalidInput as refused:
                    errors = tuple(f"{f}: {m}" for f, m in refused.errors)
                    after = model.hold_for_adjustment(current, errors)
                    now = deps.clock.now()
                    await deps.outbox.add(session, InvoiceChangeRequestedV1(
                        **_common(after, SYSTEM, now), validation_errors=errors,
                        message="the invoice cannot be issued as it is; an advisor must adjust it"), time=now)
                    log.warning("draft held: cannot be issued", invoice_id=str(current.id), errors=list(errors))
                    held += 1
                await _save(session, current, after)
            await repository.count_progress(session, run_id, worker, queued=len(due) - held, held=held)
            queued += len(due)


async def send_reminders(session_factory: async_sessionmaker[AsyncSession], deps: Deps, *, as_of: dt.date,
                         run_id: uuid.UUID | None = None, worker: str = "") -> int:
    """One reminder per due step: the query selects exactly the invoices whose next reminder
    is due, so invoices that already had all their reminders never crowd out the others."""
    schedule = tuple(sorted(deps.settings.reminder_days))
    sent = 0
    while True:
        async with session_factory.begin() as session:
            due = await repository.lock_reminders_due(session, as_of=as_of, schedule=schedule,
                                                      limit=deps.settings.billing_batch_size)
            pending = [i for i in due if model.reminders_due(i, as_of, schedule) > i.reminders_sent]
            if not pending:
                return sent
            now = deps.clock.now()
            for inv in pending:
                reminded = model.remind(inv, on=as_of)
                await _save(session, inv, reminded)
                await deps.outbox.add(session, InvoiceReminderSentV1(
                    **_common(reminded, SYSTEM, now), number=reminded.number, reminder=reminded.reminders_sent,
                    due_date=reminded.due_date, open_amount=reminded.open_amount, currency=reminded.currency), time=now)
            await repository.count_progress(session, run_id, worker, reminded=len(pending))
            sent += len(pending)


# -- actions ------------------------------------------------------------------------------------

async def visible(session: AsyncSession, principal: Principal, invoice_id: uuid.UUID, *,
                  for_update: bool = False, documents: bool = False) -> model.Invoice:
    """The invoice if `principal` may see it: its member, an advisor, or (`documents`: for its PDF
    and XML) a service allowed to read documents; otherwise 404, so its existence is not revealed."""
    inv = await repository.get(session, invoice_id, for_update=for_update)
    _may_see(principal, invoice_id, inv.member_id, documents=documents)
    return inv


def _may_see(principal: Principal, invoice_id: uuid.UUID, member_id: str, *, documents: bool) -> None:
    if not (principal.is_advisor or (documents and principal.reads_all_documents)) and member_id != principal.sub:
        raise NotFound("invoice", invoice_id)


async def document(session: AsyncSession, principal: Principal, invoice_id: uuid.UUID, kind: str):
    """The issued invoice's stored document of `kind` (filename, media_type, sha256, content), if
    `principal` may see it (as `visible` with `documents`); 409 while it is being made."""
    row = await repository.get_document(session, invoice_id, kind)
    _may_see(principal, invoice_id, row.member_id, documents=True)
    if row.status == "issuing":
        raise Conflict(f"the documents of invoice {invoice_id} are being made; ask again in a few seconds",
                       current_status=row.status)
    if row.content is None:
        raise NotFound(f"{kind} document of invoice", invoice_id)
    return row



async def add_attachment(session: AsyncSession, deps: Deps, principal: Principal, invoice_id: uuid.UUID, *,
                         filename: str, media_type: str, content: bytes) -> dict:
    """A file for the draft, judged by its content as an order's documents are; the invoice is
    locked, so it is never added while the draft is being queued for issuing."""
    current = await visible(session, principal, invoice_id, for_update=True)
    model.may_change_attachments(current, advisor=principal.is_advisor,
                                 count=len(await repository.attachments_of(session, invoice_id)))
    document = attachments.check_document(filename=filename, declared_type=media_type, content=content,
                                          max_bytes=deps.settings.attachment_max_bytes)
    values = {"id": uuid.uuid4(), "invoice_id": invoice_id, "filename": document.filename,
              "media_type": document.media_type, "size": len(content), "sha256": hashlib.sha256(content).hexdigest(),
              "content": content, "uploaded_by": principal.sub, "uploaded_at": deps.clock.now()}
    await repository.add_attachment(session, **values)
    log.info("file added to invoice draft", invoice_id=str(invoice_id), attachment_id=str(values["id"]),
             filename=values["filename"], sha256=values["sha256"], size=values["size"], by=principal.sub)
    return values


async def remove_attachment(session: AsyncSession, principal: Principal, invoice_id: uuid.UUID,
                            attachment_id: uuid.UUID) -> None:
    current = await visible(session, principal, invoice_id, for_update=True)
    model.may_change_attachments(current, advisor=principal.is_advisor)
    await repository.delete_attachment(session, invoice_id, attachment_id)
    log.info("file removed from invoice draft", invoice_id=str(invoice_id), attachment_id=str(attachment_id),
             by=principal.sub)


async def request_change(session: AsyncSession, deps: Deps, principal: Principal, invoice_id: uuid.UUID,
                         message: str) -> model.Invoice:
    current = await visible(session, principal, invoice_id, for_update=True)
    after = model.request_change(current, message)
    await _save(session, current, after)
    now = deps.clock.now()
    await deps.outbox.add(session, InvoiceChangeRequestedV1(**_common(after, principal.actor, now),
                                                            message=after.change_request), time=now)
    return after


async def adjust(session: AsyncSession, deps: Deps, principal: Principal, invoice_id: uuid.UUID,
                 changes: dict) -> model.Invoice:
    principal.require_advisor("adjust invoices")
    current = await visible(session, principal, invoice_id, for_update=True)
    after = model.adjust(current, changes, by=principal.sub, at=deps.clock.now(), today=deps.today)
    if after is not current:
        await _save(session, current, after)
    return after


async def issue_now(session: AsyncSession, deps: Deps, principal: Principal, invoice_id: uuid.UUID) -> model.Invoice:
    """"Save and send" (the member, on a draft) or issue after adjustment (an advisor): queued
    for the issuing workers as of today; the API shows it `issuing` until its documents exist."""
    current = await visible(session, principal, invoice_id, for_update=True)
    if current.status == "waiting_for_adjustment" and not principal.is_advisor:
        raise Forbidden("an advisor issues an invoice waiting for adjustment")
    after = model.queue_issue(current, on=deps.today, by=principal.actor.model_dump(mode="json"))
    await _save(session, current, after)
    log.info("invoice queued for issuing", invoice_id=str(after.id), by=principal.sub)
    return after


async def record_payment(session: AsyncSession, deps: Deps, principal: Principal, invoice_id: uuid.UUID, *,
                         amount: Decimal, received_on: dt.date, payment_id: uuid.UUID | None = None) -> model.Invoice:
    principal.require_advisor("record payments")
    current = await visible(session, principal, invoice_id, for_update=True)
    payment_id = payment_id or uuid.uuid4()
    after = model.record_payment(current, payment_id=payment_id, amount=amount, received_on=received_on,
                                 by=principal.sub, latest=deps.latest_business_date)
    if after is current:
        return current
    await _save(session, current, after)
    now = deps.clock.now()
    common = _common(after, principal.actor, now)
    await deps.outbox.add(session, InvoicePaymentRecordedV1(
        **common, payment_id=payment_id, number=after.number, currency=after.currency,
        amount=after.payments[-1].amount,
        received_on=received_on, paid_total=after.paid_total, open_amount=after.open_amount,
        overpaid_amount=after.overpaid_amount), time=now)
    if after.status == "paid" and current.status != "paid":
        await deps.outbox.add(session, InvoicePaidV1(**common, number=after.number, currency=after.currency,
                                                     paid_total=after.paid_total, paid_on=received_on), time=now)
    return after


async def dispute(session: AsyncSession, deps: Deps, principal: Principal, invoice_id: uuid.UUID,
                  objection: str) -> model.Invoice:
    principal.require_advisor("record disputes")
    current = await visible(session, principal, invoice_id, for_update=True)
    after = model.dispute(current, objection)
    await _save(session, current, after)
    now = deps.clock.now()
    await deps.outbox.add(session, InvoiceDisputedV1(**_common(after, principal.actor, now), number=after.number,
                                                     objection=after.dispute), time=now)
    return after


async def resolve_dispute(session: AsyncSession, deps: Deps, principal: Principal,
                          invoice_id: uuid.UUID) -> model.Invoice:
    principal.require_advisor("resolve disputes")
    current = await visible(session, principal, invoice_id, for_update=True)
    after = model.resolve_dispute(current)
    await _save(session, current, after)
    return after


async def _request_cancellation(session: AsyncSession, deps: Deps, invoice_id: uuid.UUID, *,
                                reason: str, actor: Actor) -> model.Invoice:
    current = await repository.get(session, invoice_id, for_update=True)
    original, cancellation = model.request_cancellation(current, cancellation_id=uuid.uuid4(), on=deps.today,
                                                        reason=reason, now=deps.clock.now(),
                                                        by=actor.model_dump(mode="json"))
    await repository.add(session, cancellation)
    await _save(session, current, original)
    log.info("cancellation queued", invoice_id=str(original.id), number=original.number,
             cancellation_id=str(cancellation.id))
    return original


async def cancel(session: AsyncSession, deps: Deps, principal: Principal, invoice_id: uuid.UUID,
                 reason: str) -> model.Invoice:
    """The cancellation invoice is queued for issuing; the original becomes `cancelled` (and
    `invoice.cancelled` is published) once the cancellation invoice's documents are stored."""
    principal.require_advisor("cancel invoices")
    await visible(session, principal, invoice_id)
    return await _request_cancellation(session, deps, invoice_id, reason=reason, actor=principal.actor)
