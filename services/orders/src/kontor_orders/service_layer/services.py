"""Use cases of the orders service: each runs in one transaction that stores the order,
appends its history and puts its events in the outbox.

Who may do what: members act on their own orders only (anything else answers 404, so
other members' orders are not revealed); advisors see every order except drafts and
take the review and cancellation decisions; the client acts through the confirmation
link only.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import secrets
import time
import uuid
from dataclasses import dataclass, replace
from decimal import Decimal

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from kontor.auth import Principal
from kontor.clock import Clock, business_today, check_run_date, end_of_business_day
from kontor.contracts import Contract
from kontor.contracts.common import Actor
from kontor.contracts.orders import (
    AttachmentV1,
    ContactPersonV1,
    InstallmentV1,
    OrderActivatedV1,
    OrderApprovedV1,
    OrderCancellationRequestedV1,
    OrderCancelledV1,
    OrderChangesRequestedV1,
    OrderClientV1,
    OrderCompletedV1,
    OrderConfirmedV1,
    OrderContractV1,
    OrderLineV1,
    OrderOfferExpiringV1,
    OrderPauseV1,
    OrderPriceChangedV1,
    OrderRejectedV1,
    OrderRenewalNoticeDueV1,
    OrderSentForConfirmationV1,
    OrderSubmittedV1,
    OrderUpdatedV1,
    OrderV1,
    PaymentTermsV1,
    PlannedInvoiceV1,
    VatV1,
)
from kontor.envelope import Envelope
from kontor.errors import Conflict, Forbidden, InvalidInput, NotFound
from kontor.logging import get_logger
from kontor.outbox import Outbox
from kontor_orders.adapters import repository
from kontor_orders.domain import attachments, checks, contract, model, pricing, values
from kontor_orders.domain.catalogue import SECTORS
from kontor_orders.domain.vat import VatTreatment, determine_vat
from kontor_orders.settings import OrdersSettings

log = get_logger(__name__)
SYSTEM = Actor(kind="system", id="orders", name="order rules")

# An event must fit in one Kafka record (the broker's default limit is 1 MiB); one that does
# not would stop the outbox relay for every order. What an order publishes when activated is
# judged on submission, with room for what later events add (an advisor's adjustments).
MAX_EVENT_BYTES = 900_000
MAX_SUBMITTED_ORDER_BYTES = 600_000


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


# -- the published form ----------------------------------------------------------------------

def _line(line) -> OrderLineV1:
    return OrderLineV1(description=line.description, quantity=line.quantity, unit=line.unit,
                       unit_price=line.unit_price, net_amount=line.net_amount, kind=line.kind)


def contract_v1(order: model.Order) -> OrderContractV1 | None:
    """A recurring order's contract as published (None for other payment modes)."""
    if order.payment is None or order.payment.mode != "recurring":
        return None
    c = contract.contract_of(order)
    renewing = c.kind == "auto_renew" and c.state in ("running", "paused")
    return OrderContractV1(kind=c.kind, state=c.state, term_months=c.term_months, notice_months=c.notice_months,
                           notice_deadline=contract.current_deadline(order) if renewing else None,
                           renews_until=contract.next_term_end(c) if renewing else None, renewals=c.renewals,
                           pauses=tuple(OrderPauseV1(start=p.start, end=p.end) for p in c.pauses),
                           cancelled_on=c.cancelled_on)


def snapshot(order: model.Order, attachments=(), base_url: str | None = None, *,
             today: dt.date | None = None) -> OrderV1:
    """The published order; its plan value as of `today` (none without a day)."""
    vat = order.vat
    p = order.payment
    c = order.confirmation
    return OrderV1(
        order_id=order.id, member_id=order.member_id, status=order.status,
        client=OrderClientV1(client_id=order.client.id, name=order.client.name, kind=order.client.kind,
                             vat_id=order.client.vat_id, country=order.client.country, language=order.client.language),
        contact_person=ContactPersonV1(name=order.contact_person.name, email=order.contact_person.email),
        sector=order.sector, place_of_service=order.place_of_service, project_name=order.project_name,
        special_agreement=order.special_agreement, description=order.description, currency=order.currency,
        lines=tuple(_line(line) for line in order.lines), net_total=order.net_total,
        vat=(VatV1(category=vat.category, rate=vat.rate, taxable_amount=order.net_total, tax_amount=order.vat_amount,
                   note=vat.note(order.client.language)),) if vat else (),
        gross_total=order.gross_total, exchange_rate_eur=order.exchange_rate_eur,
        exchange_rate_date=order.exchange_rate_date,
        service_start=order.service_start, service_end=order.service_end,
        confirmation_mode=c.mode if c else None, offer_valid_until=c.offer_valid_until if c else None,
        payment=PaymentTermsV1(
            mode=p.mode, due_in_days=p.due_in_days, invoice_date=p.invoice_date, interval=p.interval,
            first_invoice_date=p.first_invoice_date,
            installments=tuple(InstallmentV1(date=i.date, amount=i.amount, percentage=i.percentage, lines=i.lines)
                               for i in p.installments)) if p else None,
        payment_guarantee=order.payment_guarantee,
        schedule=tuple(PlannedInvoiceV1(seq=s.seq, kind=s.kind, invoice_date=s.invoice_date, due_date=s.due_date,
                                        lines=tuple(_line(line) for line in s.lines), net_amount=s.net_amount,
                                        deducted=s.deducted, period_start=s.period_start, period_end=s.period_end)
                       for s in order.schedule),
        activated_on=order.activated_on,
        attachments=tuple(AttachmentV1(attachment_id=a.id, filename=a.filename, media_type=a.media_type, size=a.size,
                                       sha256=a.sha256,
                                       url=f"{base_url}/orders/{order.id}/attachments/{a.id}" if base_url else None)
                          for a in attachments),
        version=order.version,
        plan_value=values.plan_value(order, today=today) if today is not None else None,
        order_value=values.order_value(order), values_as_of=today,
        contract=contract_v1(order), archived_lines=order.archived_lines,
    )


# -- the transaction of a transition -----------------------------------------------------------

@dataclass
class Deps:
    """What every use case needs besides its session."""

    outbox: Outbox
    clock: Clock
    settings: OrdersSettings

    @property
    def today(self) -> dt.date:
        return business_today(self.clock)


async def _record(session: AsyncSession, deps: Deps, before: model.Order | None, after: model.Order, actor: Actor,
                  action: str, events: list[type[Contract] | tuple[type[Contract], dict]], *,
                  reason: str | None = None, details=None, caused_by: Envelope | None = None) -> None:
    """Store the order, append the history entry and put its events in the outbox."""
    now = deps.clock.now()
    if before is None:
        await repository.add(session, after)
    else:
        await repository.save(session, after, expected_version=before.version)
    await repository.add_history(session, after.id, at=now, actor=actor, action=action,
                                 from_status=before.status if before else None, to_status=after.status,
                                 reason=reason, details=details)
    if events:
        order_v1 = snapshot(after, await repository.attachments_of(session, after.id), deps.settings.public_base_url,
                            today=deps.today)
        for item in events:
            contract, extra = item if isinstance(item, tuple) else (item, {})
            event = contract(order_id=after.id, order=order_v1, occurred_at=now, actor=actor, **extra)
            size = len(event.model_dump_json().encode())
            if size > MAX_EVENT_BYTES:
                # refused before it is stored: the transaction rolls back, the relay never sees it
                log.warning("order event too large", order_id=str(after.id), action=action, bytes=size)
                raise Conflict(f"the order is too large to publish ({size // 1024} KiB, at most "
                               f"{MAX_EVENT_BYTES // 1024} KiB): fewer lines or shorter texts",
                               current_status=before.status if before else None)
            await deps.outbox.add(session, event, time=now, caused_by=caused_by)
    log.info("order transition", order_id=str(after.id), action=action,
             from_status=before.status if before else None, to_status=after.status, actor=actor.kind)


async def visible(session: AsyncSession, principal: Principal, order_id: uuid.UUID, *,
                   for_update: bool = False, documents: bool = False) -> model.Order:
    order = await repository.get(session, order_id, for_update=for_update)
    # A member sees only their own orders; advisors never see drafts. Both get 404, not 403,
    # so that the existence of somebody else's order is not revealed. A service that may read
    # documents (`documents`: for an attachment) reads them as an advisor would.
    sees_all = principal.is_advisor or (documents and principal.reads_all_documents)
    if order.member_id != principal.sub and (not sees_all or order.status == "draft"):
        raise NotFound("order", order_id)
    return order


async def _owned(session: AsyncSession, principal: Principal, order_id: uuid.UUID) -> model.Order:
    order = await repository.get(session, order_id, for_update=True)
    if order.member_id != principal.sub:
        raise NotFound("order", order_id)
    return order



# -- member: drafts ---------------------------------------------------------------------------

async def _build(session: AsyncSession, deps: Deps, principal: Principal, fields: dict, *, order_id: uuid.UUID,
                 **kw) -> model.Order:
    client = await repository.get_known_client(session, fields["client_id"])
    return model.build_draft(order_id=order_id, member_id=principal.sub, client=client, client_id=fields["client_id"],
                             fields=fields, now=deps.clock.now(), **kw)


async def vat_preview(session: AsyncSession, principal: Principal, *, client_id: uuid.UUID, sector: str,
                      place_of_service: str) -> tuple[VatTreatment, model.ClientRef]:
    """The VAT an order of this client, sector and place of service will have (the form shows it as chosen);
    the rule is the domain's, as for the order itself."""
    if not (principal.is_member or principal.is_advisor):
        raise Forbidden("only members and advisors preview VAT")
    if sector not in SECTORS:
        raise InvalidInput(field="sector", message=f"unknown sector {sector!r}", location="query")
    client = await repository.get_known_client(session, client_id)
    if client is None:
        raise InvalidInput(field="client_id", message=f"unknown client {client_id}: register it with the clients "
                           "service first", location="query")
    return determine_vat(sector=SECTORS[sector], place_of_service=place_of_service, client_kind=client.kind,
                         client_vat_id=client.vat_id), client


async def create_draft(session: AsyncSession, deps: Deps, principal: Principal, fields: dict) -> model.Order:
    if not principal.is_member:
        raise Forbidden("only members create orders")
    order = await _build(session, deps, principal, fields, order_id=uuid.uuid4())
    await _record(session, deps, None, order, principal.actor, "create", [])
    return order


async def update_draft(session: AsyncSession, deps: Deps, principal: Principal, order_id: uuid.UUID,
                       fields: dict) -> model.Order:
    current = await _owned(session, principal, order_id)
    model.require(current, "edit")
    new = model.edit(current, await _build(session, deps, principal, fields, order_id=order_id))
    await _record(session, deps, current, new, principal.actor, "edit", [])
    return new


async def delete_draft(session: AsyncSession, principal: Principal, order_id: uuid.UUID) -> None:
    current = await _owned(session, principal, order_id)
    model.require(current, "delete")
    await repository.delete(session, order_id)


async def duplicate(session: AsyncSession, deps: Deps, principal: Principal, order_id: uuid.UUID) -> model.Order:
    source = await _owned(session, principal, order_id)
    client = await repository.get_known_client(session, source.client.id) or source.client
    copy = model.duplicate(source, new_id=uuid.uuid4(), member_id=principal.sub, client=client, now=deps.clock.now())
    await _record(session, deps, None, copy, principal.actor, "duplicate", [], details={"from": str(source.id)})
    await repository.copy_attachments(session, source.id, copy.id, by=principal.sub, at=deps.clock.now())
    return copy


async def submit(session: AsyncSession, deps: Deps, principal: Principal, order_id: uuid.UUID) -> model.Order:
    current = await _owned(session, principal, order_id)
    model.require(current, "submit")
    if errors := model.missing_for_submission(current, today=deps.today):
        raise InvalidInput(errors)
    # judge the client as it stands now, not as it stood when the draft was written
    client = await repository.get_known_client(session, current.client.id) or current.client
    order = replace(current, client=client)
    rate = deps.settings.eur_exchange_rates.get(order.currency)
    if rate is None:
        raise InvalidInput(field="currency", message=f"no exchange rate to EUR configured for {order.currency}")
    rule = checks.MinimumFeeRule(deps.settings.minimum_wage_eur, deps.settings.employer_on_costs,
                                 deps.settings.cooperative_fee)
    rejection = checks.rejection_for(order)
    flags = checks.minimum_fee_flags(order, exchange_rate_eur=rate, rule=rule)
    submitted = model.submit(order, today=deps.today, exchange_rate_eur=rate, rejection=rejection, flags=flags)
    if submitted.status == "smart_review":
        # what it publishes once active (its planned invoices repeat its lines) must fit in an event
        activated = model.activate(submitted, today=deps.today)
        size = len(snapshot(activated, await repository.attachments_of(session, order_id),
                            deps.settings.public_base_url).model_dump_json().encode())
        if size > MAX_SUBMITTED_ORDER_BYTES:
            raise InvalidInput(field="lines", message=(
                f"the order with its {len(activated.schedule)} planned invoices is too large ({size // 1024} KiB, "
                f"at most {MAX_SUBMITTED_ORDER_BYTES // 1024} KiB): fewer lines, shorter descriptions or fewer "
                "planned invoices"))
    flag_dicts = tuple({"code": f.code, "message": f.message, "figures": f.figures} for f in flags)
    events: list = [(OrderSubmittedV1, {"flags": flag_dicts})]
    if rejection:
        events.append((OrderRejectedV1, {"rejected_by": "automatic_check", "reason": rejection.reason}))
    await _record(session, deps, current, submitted, principal.actor, "submit", events,
                  reason=rejection.reason if rejection else None,
                  details={"flags": list(flag_dicts)} if flags else None)
    return submitted


# -- advisor: review ------------------------------------------------------------------------------

async def approve(session: AsyncSession, deps: Deps, principal: Principal, order_id: uuid.UUID) -> model.Order:
    principal.require_advisor("approve orders")
    current = await visible(session, principal, order_id, for_update=True)
    client = await repository.get_known_client(session, current.client.id) or current.client
    approved = model.approve(replace(current, client=client), today=deps.today)
    events: list = [OrderApprovedV1]
    details = None
    if approved.status == "client_confirmation":
        token = secrets.token_urlsafe(32)
        offer_valid_until = model.submitted(model.submitted(approved.confirmation, "confirmation").offer_valid_until,
                                            "confirmation.offer_valid_until")
        valid_until = end_of_business_day(offer_valid_until)
        await repository.add_token(session, token_hash=token_hash(token), order_id=order_id, valid_until=valid_until,
                                   now=deps.clock.now())
        url = f"{deps.settings.public_base_url}/confirm/{token}"
        events.append((OrderSentForConfirmationV1, {"confirmation_url": url, "valid_until": valid_until}))
        details = {"confirmation_valid_until": valid_until.isoformat()}
    else:
        events.append(OrderActivatedV1)
    await _record(session, deps, current, approved, principal.actor, "approve", events, details=details)
    return approved


async def reject(session: AsyncSession, deps: Deps, principal: Principal, order_id: uuid.UUID,
                 reason: str) -> model.Order:
    principal.require_advisor("reject orders")
    current = await visible(session, principal, order_id, for_update=True)
    rejected = model.reject(current, by="advisor", reason=reason)
    await _record(session, deps, current, rejected, principal.actor, "reject",
                  [(OrderRejectedV1, {"rejected_by": "advisor", "reason": _rejection_reason(rejected)})],
                  reason=_rejection_reason(rejected))
    return rejected


async def adjust(session: AsyncSession, deps: Deps, principal: Principal, order_id: uuid.UUID, changes: dict,
                 note: str | None) -> model.Order:
    principal.require_advisor("adjust orders")
    current = await visible(session, principal, order_id, for_update=True)
    adjusted, diff = model.adjust(current, changes)
    if not diff:
        return current
    await _record(session, deps, current, adjusted, principal.actor, "adjust",
                  [(OrderUpdatedV1, {"changes": tuple(diff)})], reason=note, details=diff)
    return adjusted


def _rejection_reason(order: model.Order) -> str:
    """The reason of an order that was just rejected."""
    if order.rejection is None:
        raise TypeError(f"order {order.id} in status {order.status} has no rejection")
    return order.rejection.reason


# -- the client, through the confirmation link ---------------------------------------------------

@dataclass(frozen=True)
class LinkState:
    state: str  # open | unknown | used | expired | closed
    order: model.Order | None = None
    outcome: str | None = None


async def open_link(session: AsyncSession, deps: Deps, token: str, *, for_update: bool = False) -> LinkState:
    row = await repository.get_token(session, token_hash(token), for_update=for_update)
    if row is None:
        return LinkState("unknown")
    order = await repository.get(session, row.order_id, for_update=for_update)
    if row.used_at is not None:
        return LinkState("used", order, row.outcome)
    if deps.clock.now() > row.valid_until:
        return LinkState("expired", order)
    if order.status != "client_confirmation":
        return LinkState("closed", order)
    return LinkState("open", order)


async def answer_link(session: AsyncSession, deps: Deps, token: str, action: str, message: str | None) -> LinkState:
    """The client confirms, rejects or requests changes; the link is used up either way."""
    link = await open_link(session, deps, token, for_update=True)
    current = link.order
    if link.state != "open" or current is None:  # an open link always has its order
        return link
    client = Actor(kind="client", id=str(current.client.id), name=current.client.name)
    if action == "confirm":
        after = model.confirm(current, today=deps.today)
        events: list = [OrderConfirmedV1, OrderActivatedV1]
        reason = message
    elif action == "reject":
        after = model.reject(current, by="client", reason=message or "", action="client_reject")
        reason = _rejection_reason(after)
        events = [(OrderRejectedV1, {"rejected_by": "client", "reason": reason})]
    elif action == "request_changes":
        after = model.request_changes(current, message or "")
        events = [(OrderChangesRequestedV1, {"message": after.changes_requested})]
        reason = after.changes_requested
    else:
        raise InvalidInput(field="action", message="must be confirm, reject or request_changes")
    await _record(session, deps, current, after, client, f"client_{action}" if action != "confirm" else "confirm",
                  events, reason=reason)
    await repository.use_token(session, token_hash(token), outcome=action, now=deps.clock.now())
    return LinkState("answered", after, action)


# -- cancellation and completion ------------------------------------------------------------------

async def request_cancellation(session: AsyncSession, deps: Deps, principal: Principal, order_id: uuid.UUID,
                               reason: str) -> model.Order:
    current = await _owned(session, principal, order_id)
    after = model.request_cancellation(current, reason)
    await _record(session, deps, current, after, principal.actor, "request_cancellation",
                  [(OrderCancellationRequestedV1, {"reason": after.cancellation_reason})],
                  reason=after.cancellation_reason)
    return after


async def decide_cancellation(session: AsyncSession, deps: Deps, principal: Principal, order_id: uuid.UUID, *,
                              approve: bool, reason: str, cancel_invoice_ids: tuple[uuid.UUID, ...]) -> model.Order:
    principal.require_advisor("decide on cancellations")
    if not (reason or "").strip():
        raise InvalidInput(field="reason", message="say why")
    current = await visible(session, principal, order_id, for_update=True)
    after = model.decide_cancellation(current, approve=approve, cancel_invoice_ids=cancel_invoice_ids)
    if approve:
        events: list = [(OrderCancelledV1, {"reason": reason.strip(), "cancel_invoice_ids": cancel_invoice_ids})]
    else:
        events = [(OrderUpdatedV1, {"changes": ({"field": "status", "before": current.status, "after": after.status,
                                                 "reason": reason.strip()},)})]
    await _record(session, deps, current, after, principal.actor,
                  "approve_cancellation" if approve else "decline_cancellation", events, reason=reason.strip(),
                  details={"cancel_invoice_ids": [str(i) for i in cancel_invoice_ids]} if approve else None)
    return after


async def complete(session: AsyncSession, deps: Deps, principal: Principal, order_id: uuid.UUID) -> model.Order:
    current = await _owned(session, principal, order_id)
    after = model.complete(current, today=deps.today)
    await _record(session, deps, current, after, principal.actor, "complete", [OrderCompletedV1])
    return after


async def change_price(session: AsyncSession, deps: Deps, principal: Principal, order_id: uuid.UUID, *, line: int,
                       unit_price: Decimal, effective_from: dt.date) -> tuple[model.Order, pricing.PriceChange]:
    """The member changes the price of a line of their active recurring order from a date onward (advisors may
    too): the planned invoices from then on bill it, the history keeps the change, the event tells invoicing."""
    if principal.is_advisor:
        current = await visible(session, principal, order_id, for_update=True)
    else:
        current = await _owned(session, principal, order_id)
    after, change = pricing.change_order_price(current, line=line, unit_price=unit_price,
                                               effective_from=effective_from, today=deps.today,
                                               draft_lead_days=deps.settings.invoice_draft_lead_days)
    details = {"line": change.line, "description": change.description,
               "unit_price_before": str(change.unit_price_before), "unit_price": str(change.unit_price),
               "effective_from": change.effective_from.isoformat(), "replanned": list(change.replanned)}
    await _record(session, deps, current, after, principal.actor, "change_price",
                  [(OrderPriceChangedV1, {"line": change.line, "description": change.description,
                                          "unit_price_before": change.unit_price_before,
                                          "unit_price": change.unit_price, "effective_from": change.effective_from,
                                          "replanned": change.replanned})],
                  details=details)
    return after, change


def _contract_details(order: model.Order) -> dict:
    c = contract.contract_of(order)
    deadline = contract.current_deadline(order)
    return {"kind": c.kind, "state": c.state, "term_months": c.term_months, "notice_months": c.notice_months,
            "service_end": order.service_end.isoformat() if order.service_end else None,
            "notice_deadline": deadline.isoformat() if deadline else None}


async def _record_contract(session: AsyncSession, deps: Deps, current: model.Order, after: model.Order, actor: Actor,
                           action: str, extra: dict | None = None, events: list | None = None) -> None:
    """A contract change: in the history (before, after) and published as kontor.order.updated.v1 (`events`:
    instead of it)."""
    before_d, after_d = _contract_details(current), _contract_details(after)
    details = {"before": before_d, "after": after_d, **(extra or {})}
    change = {"field": "contract", "action": action, "before": before_d, "after": after_d, **(extra or {})}
    await _record(session, deps, current, after, actor, f"contract_{action}",
                  events or [(OrderUpdatedV1, {"changes": (change,)})], details=details)


async def change_contract(session: AsyncSession, deps: Deps, principal: Principal, order_id: uuid.UUID, *,
                          action: str, start: dt.date | None = None, until: dt.date | None = None,
                          term_months: int | None = None, notice_months: int | None = None) -> model.Order:
    """The member (or an advisor) changes the contract of an active recurring order: automatic renewal, pause,
    resume, cancel (see domain/contract.py); the planned invoices follow."""
    if principal.is_advisor:
        current = await visible(session, principal, order_id, for_update=True)
    else:
        current = await _owned(session, principal, order_id)
    extra: dict = {}
    if action == "auto_renew":
        after = contract.start_auto_renewal(current, term_months=term_months, notice_months=notice_months,
                                            today=deps.today)
    elif action == "pause":
        after, dropped = contract.pause(current, start=start, end=until, today=deps.today,
                                        draft_lead_days=deps.settings.invoice_draft_lead_days)
        extra = {"from": start.isoformat() if start else None, "until": until.isoformat() if until else None,
                 "dropped": list(dropped)}
    elif action == "resume":
        after, added = contract.resume(current, start=start, today=deps.today)
        extra = {"from": (start or deps.today).isoformat(), "planned": list(added)}
    elif action == "cancel":
        after = contract.cancel(current, today=deps.today)
    else:
        raise InvalidInput(field="action", message=f"must be one of {', '.join(contract.ACTIONS)}")
    await _record_contract(session, deps, current, after, principal.actor, action, extra)
    return after


async def tidy_up(session: AsyncSession, deps: Deps, principal: Principal, order_id: uuid.UUID) -> model.Order:
    """Fully invoiced lines move to the order's archive (kept, no longer open); recorded and published."""
    current = await _owned(session, principal, order_id)
    after, moved = contract.tidy_up(current)
    change = {"field": "archived_lines", "before": list(current.archived_lines), "after": list(after.archived_lines)}
    await _record(session, deps, current, after, principal.actor, "tidy_up", [(OrderUpdatedV1, {"changes": (change,)})],
                  details={"archived": list(moved), "descriptions": [current.lines[i].description for i in moved]})
    return after


async def contract_run(session: AsyncSession, deps: Deps, order_id: uuid.UUID, *, as_of: dt.date) -> dict[str, int]:
    """The contract rules for one order as of a day, idempotent: end a pause that is over, remind the member
    before the notice deadline (once per term), renew every term whose deadline has passed, finish a one-off
    contract after its period."""
    counts = {"renewed": 0, "reminded": 0, "resumed": 0, "finished": 0}
    current = await repository.get(session, order_id, for_update=True)
    if contract.pause_over(current, as_of=as_of):
        after = contract.end_pause(current)
        await _record_contract(session, deps, current, after, SYSTEM, "resume", {"pause_ended": True})
        current, counts["resumed"] = after, 1
    while contract.renewal_due(current, as_of=as_of):
        after, added = contract.renew(current)
        await _record_contract(session, deps, current, after, SYSTEM, "renew", {"planned": list(added)})
        current = after
        counts["renewed"] += 1
    deadline = contract.reminder_due(current, as_of=as_of, reminder_days=deps.settings.renewal_reminder_days)
    if deadline is not None:
        after = contract.remind(current)
        c = contract.contract_of(current)
        term_end, renews_until = model.submitted(current.service_end, "service_period"), contract.next_term_end(c)
        await _record_contract(session, deps, current, after, SYSTEM, "remind",
                               {"notice_deadline": deadline.isoformat(), "renews_until": renews_until.isoformat()},
                               events=[(OrderRenewalNoticeDueV1, {
                                   "notice_deadline": deadline, "term_end": term_end, "renews_until": renews_until,
                                   "term_months": c.term_months or 0})])
        current, counts["reminded"] = after, 1
    if contract.finish_due(current, as_of=as_of):
        after = contract.finish(current)
        await _record_contract(session, deps, current, after, SYSTEM, "finish")
        counts["finished"] = 1
    return counts


# -- comments and attachments ---------------------------------------------------------------------

async def add_comment(session: AsyncSession, deps: Deps, principal: Principal, order_id: uuid.UUID, text: str):
    await visible(session, principal, order_id)
    if not text.strip():
        raise InvalidInput(field="text", message="is required")
    return await repository.add_comment(session, order_id, author_id=principal.sub,
                                        author_role="advisor" if principal.is_advisor else "member",
                                        text=text.strip(), at=deps.clock.now())


async def add_attachment(session: AsyncSession, deps: Deps, principal: Principal, order_id: uuid.UUID, *,
                         filename: str, media_type: str, content: bytes):
    order = await _owned(session, principal, order_id)
    if order.status not in ("draft", "smart_review", "client_confirmation", "active"):
        raise InvalidInput(field="file", message=f"no documents can be added to a {order.status} order")
    if len(await repository.attachments_of(session, order_id)) >= attachments.MAX_PER_ORDER:
        raise InvalidInput(field="file", message=f"an order has at most {attachments.MAX_PER_ORDER} documents")
    document = attachments.check_document(filename=filename, declared_type=media_type, content=content,
                                          max_bytes=deps.settings.attachment_max_bytes)
    values = dict(id=uuid.uuid4(), order_id=order_id, filename=document.filename, media_type=document.media_type,
                  size=len(content), sha256=hashlib.sha256(content).hexdigest(), content=content,
                  uploaded_by=principal.sub, uploaded_at=deps.clock.now())
    await repository.add_attachment(session, **values)
    await repository.add_history(session, order_id, at=deps.clock.now(), actor=principal.actor,
                                 action="attach", from_status=order.status, to_status=order.status,
                                 details={"filename": values["filename"], "sha256": values["sha256"]})
    return values


# -- invoices issued (from kontor.invoices.v1) --------------------------------------------------

async def record_issued_invoice(session: AsyncSession, deps: Deps, order_id: uuid.UUID, invoice_id: uuid.UUID,
                                number: str, caused_by: Envelope, net_amount: Decimal | None = None) -> None:
    """`net_amount`: what the invoice billed, net (a final invoice less what it deducts)."""
    try:
        current = await repository.get(session, order_id, for_update=True)
    except NotFound:
        log.warning("invoice for an unknown order ignored", order_id=str(order_id), invoice_id=str(invoice_id))
        return
    after = model.record_issued_invoice(current, invoice_id, number, net_amount)
    if after is not None:
        await repository.save(session, after, expected_version=current.version)
        await repository.add_history(session, order_id, at=deps.clock.now(), actor=Actor(kind="system", id="invoicing"),
                                     action="invoice_issued", from_status=current.status, to_status=after.status,
                                     details={"invoice_id": str(invoice_id), "number": number,
                                              "net_amount": str(net_amount) if net_amount is not None else None})


async def record_cancelled_invoice(session: AsyncSession, deps: Deps, order_id: uuid.UUID, invoice_id: uuid.UUID,
                                   number: str, caused_by: Envelope) -> None:
    """An issued invoice of the order was cancelled: it leaves the order value."""
    try:
        current = await repository.get(session, order_id, for_update=True)
    except NotFound:
        log.warning("cancellation for an unknown order ignored", order_id=str(order_id), invoice_id=str(invoice_id))
        return
    after = model.record_cancelled_invoice(current, invoice_id)
    if after is None:
        log.info("cancellation of an invoice not recorded here ignored", order_id=str(order_id),
                 invoice_id=str(invoice_id))
        return
    await repository.save(session, after, expected_version=current.version)
    await repository.add_history(session, order_id, at=deps.clock.now(), actor=Actor(kind="system", id="invoicing"),
                                 action="invoice_cancelled", from_status=current.status, to_status=after.status,
                                 details={"invoice_id": str(invoice_id), "number": number})


# -- time-driven rules ----------------------------------------------------------------------------

@dataclass(frozen=True)
class RunReport:
    as_of: dt.date
    warned: int
    expired: int
    completed: int
    renewed: int = 0
    reminded: int = 0
    resumed: int = 0
    finished: int = 0


async def run_rules(session_factory: async_sessionmaker[AsyncSession], deps: Deps, *, as_of: dt.date,
                    progress_every: int = 200) -> RunReport:
    """Warn of offers expiring within `offer_warning_days`, reject expired offers, complete
    finished orders; one transaction per order, safe to run on several replicas at once
    (each order is locked and re-checked)."""
    check_run_date(as_of, today=deps.today, allow_future=deps.settings.allow_future_as_of)
    warn_days = deps.settings.offer_warning_days
    async with session_factory() as session:
        ids = await repository.ids_for_runs(session, as_of=as_of, warn_days=warn_days)
    counts = {"warned": 0, "expired": 0, "completed": 0}
    started, total = time.monotonic(), len(ids["confirmation"]) + len(ids["active"])
    done = 0
    for order_id in ids["confirmation"]:
        async with session_factory.begin() as session:
            current = await repository.get(session, order_id, for_update=True)
            if current.status != "client_confirmation":
                continue
            valid_until = model.submitted(model.submitted(current.confirmation, "confirmation").offer_valid_until,
                                          "confirmation.offer_valid_until")
            if valid_until < as_of:
                after = model.expire(current)
                await _record(session, deps, current, after, SYSTEM, "expire",
                              [(OrderRejectedV1, {"rejected_by": "offer_expired", "reason": _rejection_reason(after)})],
                              reason=_rejection_reason(after))
                await repository.retire_tokens(session, order_id, outcome="expired", now=deps.clock.now())
                counts["expired"] += 1
            elif not current.offer_warning_sent:
                after = model.warn_expiry(current)
                await _record(session, deps, current, after, SYSTEM, "warn_expiry",
                              [(OrderOfferExpiringV1, {"offer_valid_until": valid_until})])
                counts["warned"] += 1
        done += 1
        if done % progress_every == 0:
            log.info("order run progress", done=done, total=total, **counts)
    for order_id in ids["active"]:
        async with session_factory.begin() as session:
            current = await repository.get(session, order_id, for_update=True)
            if (current.status == "active" and current.all_invoices_issued
                    and model.submitted(current.service_end, "service_period") < as_of
                    and not contract.renewal_due(current, as_of=as_of)):  # a renewing order goes on
                after = model.complete(current, today=as_of)
                await _record(session, deps, current, after, SYSTEM, "complete", [OrderCompletedV1])
                counts["completed"] += 1
        done += 1
        if done % progress_every == 0:
            log.info("order run progress", done=done, total=total, **counts)
    contract_counts = {"renewed": 0, "reminded": 0, "resumed": 0, "finished": 0}
    async with session_factory() as session:
        contract_ids = await repository.ids_for_contract_runs(session)
    for order_id in contract_ids:
        async with session_factory.begin() as session:
            for name, n in (await contract_run(session, deps, order_id, as_of=as_of)).items():
                contract_counts[name] += n
    log.info("order run contracts", as_of=as_of.isoformat(), candidates=len(contract_ids), **contract_counts)
    log.info("order run finished", as_of=as_of.isoformat(), candidates=total, **counts,
             elapsed_s=round(time.monotonic() - started, 2))
    return RunReport(as_of, **counts, **contract_counts)
