"""Use cases of the invoicing service. Each runs in one transaction with its outbox events;
runs take one invoice (or planned invoice) per transaction, locked with SKIP LOCKED, so
several replicas share the work and never do the same thing twice.
"""
from __future__ import annotations

import datetime as dt
import time
import uuid
from dataclasses import dataclass, replace
from decimal import Decimal

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from kontor.auth import Principal
from kontor.clock import Clock, business_today
from kontor.contracts.common import Actor
from kontor.contracts.invoices import (
    InvoiceCancelledV1,
    InvoiceChangeRequestedV1,
    InvoiceDisputedV1,
    InvoiceDocumentV1,
    InvoiceDraftCreatedV1,
    InvoiceIssuedV1,
    InvoiceLineV1,
    InvoicePaidV1,
    InvoicePaymentRecordedV1,
    InvoiceReminderSentV1,
    InvoiceV1,
    VatBreakdownV1,
)
from kontor.contracts.orders import OrderV1
from kontor.envelope import Envelope
from kontor.errors import Forbidden, InvalidInput, NotFound
from kontor.logging import get_logger
from kontor.outbox import Outbox
from kontor_invoicing.adapters import repository
from kontor_invoicing.adapters.documents import DocumentRenderer
from kontor_invoicing.domain import model
from kontor_invoicing.settings import InvoicingSettings

log = get_logger(__name__)
SYSTEM = Actor(kind="system", id="invoicing", name="billing run")


class DocumentsRejected(Exception):
    """The rendered X-Rechnung failed the official rules: the invoice is not sent."""

    def __init__(self, errors: tuple[str, ...]) -> None:
        super().__init__("; ".join(errors))
        self.errors = errors


@dataclass
class Deps:
    outbox: Outbox
    clock: Clock
    settings: InvoicingSettings
    renderer: DocumentRenderer
    validator: object | None = None  # XRechnungValidator when the rules directory is configured

    @property
    def today(self) -> dt.date:
        return business_today(self.clock)



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
        lines=tuple(InvoiceLineV1(position=i, description=l.description, quantity=l.quantity, unit=l.unit,
                                  unit_price=l.unit_price, net_amount=l.net_amount, vat_category=l.vat_category,
                                  vat_rate=l.vat_rate) for i, l in enumerate(inv.lines, start=1)),
        documents=tuple(InvoiceDocumentV1(kind=d.kind, filename=d.filename, media_type=d.media_type, sha256=d.sha256,
                                          url=f"{base_url}/invoices/{inv.id}/{'pdf' if d.kind == 'pdf' else 'xrechnung.xml'}")
                        for d in inv.documents),
        cancels_invoice_id=inv.cancels_invoice_id, cancels_number=inv.cancels_number,
    )


def _common(inv: model.Invoice, actor: Actor, now: dt.datetime) -> dict:
    return dict(invoice_id=inv.id, client_id=inv.client_id, order_id=inv.order_id, member_id=inv.member_id,
                occurred_at=now, actor=actor)


async def _save(session: AsyncSession, before: model.Invoice, after: model.Invoice) -> None:
    await repository.save(session, after, expected_version=before.version)


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


async def order_cancelled(session: AsyncSession, deps: Deps, order: OrderV1, cancel_invoice_ids, reason: str,
                          envelope: Envelope) -> None:
    """Undrafted plans are dropped, drafts discarded; issued invoices are cancelled only when
    the advisor named them."""
    await remember_order(session, order)
    dropped = await repository.drop_open_plans(session, order.order_id)
    for inv in await repository.of_order(session, order.order_id):
        if inv.status in ("draft", "waiting_for_adjustment"):
            current = await repository.get(session, inv.id, for_update=True)
            await _save(session, current, model.discard(current))
        elif inv.id in set(cancel_invoice_ids) and inv.status in model.TRANSITIONS["cancel"]:
            await _cancel(session, deps, inv.id, reason=f"order cancelled: {reason}", actor=SYSTEM, caused_by=envelope)
    log.info("order cancelled", order_id=str(order.order_id), plans_dropped=dropped,
             invoices_cancelled=len(cancel_invoice_ids))


# -- drafts -----------------------------------------------------------------------------------

def _vat_note(order: dict) -> str | None:
    vat = order.get("vat") or []
    return vat[0].get("note") if vat else None


def draft_from_plan(plan: dict, order: dict, client: dict | None, *, now: dt.datetime) -> model.Invoice:
    vat = (order.get("vat") or [{"category": "S", "rate": "19"}])[0]
    lines = tuple(model.Line(description=l["description"], quantity=Decimal(l["quantity"]), unit=l["unit"],
                             unit_price=Decimal(l["unit_price"]), net_amount=Decimal(l["net_amount"]),
                             vat_category=vat["category"], vat_rate=Decimal(vat["rate"])) for l in plan["lines"])
    buyer = dict(client or {})
    if not buyer:
        c = order["client"]
        buyer = {"name": c["name"], "kind": c["kind"], "vat_id": c.get("vat_id"), "language": c.get("language", "de"),
                 "address": {"country": c["country"]}}
    return model.Invoice(
        id=uuid.uuid4(), order_id=uuid.UUID(order["order_id"]), member_id=order["member_id"],
        client_id=uuid.UUID(order["client"]["client_id"]), seq=plan["seq"], kind="invoice",
        schedule_kind=plan["kind"], status="draft", currency=order["currency"], lines=lines,
        invoice_date=dt.date.fromisoformat(plan["invoice_date"]),
        due_in_days=(order.get("payment") or {}).get("due_in_days", 14), created_at=now,
        project_name=order.get("project_name"), description=order.get("description"), vat_note=_vat_note(order),
        service_period_start=dt.date.fromisoformat(plan["period_start"]) if plan.get("period_start") else None,
        service_period_end=dt.date.fromisoformat(plan["period_end"]) if plan.get("period_end") else None,
        contact_name=order["contact_person"]["name"], contact_email=order["contact_person"]["email"], buyer=buyer,
        exchange_rate_eur=Decimal(order["exchange_rate_eur"]) if order.get("exchange_rate_eur") else None,
    )


async def create_due_drafts(session_factory: async_sessionmaker[AsyncSession], deps: Deps, *, as_of: dt.date) -> int:
    until = as_of + dt.timedelta(days=deps.settings.draft_lead_days)
    created = 0
    while True:
        async with session_factory.begin() as session:
            plans = await repository.due_plans(session, until=until, limit=deps.settings.billing_batch_size)
            if not plans:
                return created
            for row in plans:
                order = await repository.known_order(session, row.order_id)
                if order is None or order["status"] in ("cancelled",):
                    await repository.mark_plan(session, row.order_id, row.seq, "dropped")
                    continue
                client = await repository.known_client(session, uuid.UUID(order["client"]["client_id"]))
                draft = draft_from_plan(row.plan, order, client, now=deps.clock.now())
                if await repository.add(session, draft):
                    now = deps.clock.now()
                    await deps.outbox.add(session, InvoiceDraftCreatedV1(
                        **_common(draft, SYSTEM, now), invoice=published(draft),
                        check_until=draft.invoice_date - dt.timedelta(days=1)), time=now)
                    created += 1
                await repository.mark_plan(session, row.order_id, row.seq, "drafted")
        log.info("drafts created", created=created, as_of=as_of.isoformat())


# -- issuing ----------------------------------------------------------------------------------

async def _prepaid(session: AsyncSession, inv: model.Invoice) -> Decimal:
    """What the earlier installments of the order billed (gross), for the final invoice."""
    if inv.schedule_kind != "final":
        return Decimal(0)
    earlier = [i for i in await repository.of_order(session, inv.order_id)
               if i.kind == "invoice" and i.schedule_kind == "installment" and i.status in ("invoiced", "paid",
                                                                                              "disputed")]
    return sum((i.gross_total for i in earlier), Decimal(0))


async def _issue(session: AsyncSession, deps: Deps, current: model.Invoice, actor: Actor, *, on: dt.date,
                 caused_by: Envelope | None = None) -> model.Invoice:
    """Number, documents and status in one transaction; `on` is the issue date (a run's as-of).
    When the X-Rechnung fails the official rules, everything of the attempt is rolled back
    (the number too, so numbers stay gapless) and the invoice waits for an advisor."""
    try:
        async with session.begin_nested():
            return await _number_render_store(session, deps, current, actor, on=on, caused_by=caused_by)
    except DocumentsRejected as rejected:
        held = model.hold_for_adjustment(current, rejected.errors)
        await _save(session, current, held)
        now = deps.clock.now()
        await deps.outbox.add(session, InvoiceChangeRequestedV1(
            **_common(held, SYSTEM, now), message="the X-Rechnung failed the official rules; an advisor must adjust it",
            validation_errors=rejected.errors), time=now, caused_by=caused_by)
        log.warning("invoice held: X-Rechnung invalid", invoice_id=str(held.id), errors=list(rejected.errors))
        return held


async def _take_number(session: AsyncSession, on: dt.date) -> str:
    return model.format_number(on.year, await repository.next_number(session, on.year))


async def _with_documents(session: AsyncSession, deps: Deps, inv: model.Invoice, now: dt.datetime) -> model.Invoice:
    """Render the PDF and the X-Rechnung, check the XML by the official rules when they are
    configured (`DocumentsRejected` if it fails), store both with their SHA-256."""
    documents = deps.renderer.render(inv)
    if deps.validator is not None:
        report = deps.validator.validate(next(d.content for d in documents if d.kind == "xrechnung"))
        if not report.valid:
            raise DocumentsRejected(tuple(str(e) for e in report.errors))
    for d in documents:
        await repository.add_document(session, inv.id, kind=d.kind, filename=d.filename, media_type=d.media_type,
                                      sha256=d.sha256, content=d.content, now=now)
    return replace(inv, documents=tuple(model.Document(d.kind, d.filename, d.media_type, d.sha256) for d in documents))


async def _number_render_store(session: AsyncSession, deps: Deps, current: model.Invoice, actor: Actor, *,
                               on: dt.date, caused_by: Envelope | None) -> model.Invoice:
    now = deps.clock.now()
    today = on
    client = await repository.known_client(session, current.client_id)
    ready = replace(current, prepaid_amount=await _prepaid(session, current), buyer=client or current.buyer)
    number = await _take_number(session, today)
    issued = await _with_documents(session, deps, model.issue(ready, number=number, issue_date=today), now)
    await _save(session, current, issued)
    await deps.outbox.add(session, InvoiceIssuedV1(**_common(issued, actor, now),
                                                   invoice=published(issued, deps.settings.public_base_url)),
                          time=now, caused_by=caused_by)
    log.info("invoice issued", invoice_id=str(issued.id), number=number, order_id=str(issued.order_id))
    return issued


async def issue_due(session_factory: async_sessionmaker[AsyncSession], deps: Deps, *, as_of: dt.date) -> int:
    """Drafts nobody acted on are issued on their invoice date."""
    issued = 0
    while True:
        async with session_factory.begin() as session:
            due = await repository.lock_drafts_due(session, until=as_of, limit=1)
            if not due:
                return issued
            await _issue(session, deps, due[0], SYSTEM, on=as_of)
            issued += 1
        if issued % 100 == 0:
            log.info("billing run progress", issued=issued, as_of=as_of.isoformat())


async def send_reminders(session_factory: async_sessionmaker[AsyncSession], deps: Deps, *, as_of: dt.date) -> int:
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
                sent += 1


@dataclass(frozen=True)
class RunReport:
    as_of: dt.date
    drafted: int
    issued: int
    reminded: int
    elapsed_s: float


async def billing_run(session_factory: async_sessionmaker[AsyncSession], deps: Deps, *, as_of: dt.date) -> RunReport:
    started = time.monotonic()
    drafted = await create_due_drafts(session_factory, deps, as_of=as_of)
    issued = await issue_due(session_factory, deps, as_of=as_of)
    reminded = await send_reminders(session_factory, deps, as_of=as_of)
    report = RunReport(as_of, drafted, issued, reminded, round(time.monotonic() - started, 2))
    log.info("billing run finished", **{k: str(v) for k, v in vars(report).items()})
    return report


# -- actions ------------------------------------------------------------------------------------

async def visible(session: AsyncSession, principal: Principal, invoice_id: uuid.UUID, *,
                  for_update: bool = False) -> model.Invoice:
    inv = await repository.get(session, invoice_id, for_update=for_update)
    if not principal.is_advisor and inv.member_id != principal.sub:
        raise NotFound("invoice", invoice_id)
    return inv



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
    if "lines" in changes:
        changes["lines"] = tuple(model.priced_line(current, **line) for line in changes["lines"])
    after = model.adjust(current, changes, by=principal.sub, at=deps.clock.now(), today=deps.today)
    if after is not current:
        await _save(session, current, after)
    return after


async def issue_now(session: AsyncSession, deps: Deps, principal: Principal, invoice_id: uuid.UUID) -> model.Invoice:
    """"Save and send" (the member, on a draft) or issue after adjustment (an advisor)."""
    current = await visible(session, principal, invoice_id, for_update=True)
    if current.status == "waiting_for_adjustment" and not principal.is_advisor:
        raise Forbidden("an advisor issues an invoice waiting for adjustment")
    model.require(current, "issue")
    return await _issue(session, deps, current, principal.actor, on=deps.today)


async def record_payment(session: AsyncSession, deps: Deps, principal: Principal, invoice_id: uuid.UUID, *,
                         amount: Decimal, received_on: dt.date, payment_id: uuid.UUID | None = None) -> model.Invoice:
    principal.require_advisor("record payments")
    current = await visible(session, principal, invoice_id, for_update=True)
    payment_id = payment_id or uuid.uuid4()
    after = model.record_payment(current, payment_id=payment_id, amount=amount, received_on=received_on,
                                 by=principal.sub)
    if after is current:
        return current
    await _save(session, current, after)
    now = deps.clock.now()
    common = _common(after, principal.actor, now)
    await deps.outbox.add(session, InvoicePaymentRecordedV1(
        **common, payment_id=payment_id, number=after.number, currency=after.currency, amount=amount,
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


async def _cancel(session: AsyncSession, deps: Deps, invoice_id: uuid.UUID, *, reason: str, actor: Actor,
                  caused_by: Envelope | None = None) -> model.Invoice:
    current = await repository.get(session, invoice_id, for_update=True)
    model.require(current, "cancel")
    now, today = deps.clock.now(), deps.today
    number = await _take_number(session, today)
    original, cancellation = model.cancel(current, cancellation_id=uuid.uuid4(), number=number, issue_date=today,
                                          now=now)
    try:
        cancellation = await _with_documents(session, deps, cancellation, now)
    except DocumentsRejected as rejected:  # nothing is cancelled; the advisor sees why
        raise InvalidInput(field="cancellation", message="the cancellation invoice fails the X-Rechnung rules: "
                           + "; ".join(rejected.errors)) from rejected
    await repository.add(session, cancellation)
    await _save(session, current, original)
    await deps.outbox.add(session, InvoiceCancelledV1(
        **_common(original, actor, now), number=original.number, currency=original.currency, reason=reason,
        cancellation=published(cancellation, deps.settings.public_base_url), refund_due=original.refund_due),
        time=now, caused_by=caused_by)
    log.info("invoice cancelled", invoice_id=str(original.id), number=original.number, cancellation=number)
    return original


async def cancel(session: AsyncSession, deps: Deps, principal: Principal, invoice_id: uuid.UUID,
                 reason: str) -> model.Invoice:
    principal.require_advisor("cancel invoices")
    await visible(session, principal, invoice_id)
    return await _cancel(session, deps, invoice_id, reason=reason, actor=principal.actor)
