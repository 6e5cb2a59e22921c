"""The order: its fields, validation, state machine and history. No I/O.

A draft may be incomplete (members save and come back); `submit` demands every field.
Every transition is a function `Order -> Order` that raises `Conflict` (with the current
status) when the order's status does not allow it; the service layer records each one
in the history and publishes its event.
"""
from __future__ import annotations

import datetime as dt
import re
import uuid
from dataclasses import dataclass, field, replace
from decimal import Decimal, InvalidOperation
from typing import TypeVar

from kontor import lifecycle
from kontor.errors import Conflict, InvalidInput
from kontor.inputs import MAX_AMOUNT, MAX_QUANTITY, check_currency_decimals
from kontor.money import CURRENCIES, MINOR_UNITS, round_money
from kontor_orders.domain.catalogue import SECTORS
from kontor_orders.domain.contract import Contract
from kontor_orders.domain.schedule import (
    LINE_KINDS,
    Installment,
    Line,
    PaymentTerms,
    PlannedInvoice,
    billable,
    compute_schedule,
    date_error,
    installment_amounts,
    terms_date_errors,
    validate_terms,
)
from kontor_orders.domain.vat import PLACES, VatTreatment, determine_vat

UNITS = ("day", "hour", "lump_sum", "week", "month", "other")
STATUSES = ("draft", "smart_review", "client_confirmation", "active", "cancellation_requested", "cancelled",
            "completed", "rejected")
# The API validates addresses with email-validator; the domain still refuses what no mail
# server takes (whitespace, control characters), whoever calls it.
EMAIL_RE = re.compile(r"^[^@\s\x00-\x1f\x7f]+@[^@\s\x00-\x1f\x7f]+\.[^@\s\x00-\x1f\x7f]+$")
MAX_LINES = 200

# action -> the statuses it is allowed from (the state machine of DESIGN.md §2)
TRANSITIONS: dict[str, frozenset[str]] = {
    "edit": frozenset({"draft"}),
    "delete": frozenset({"draft"}),
    "submit": frozenset({"draft"}),
    "approve": frozenset({"smart_review"}),
    "reject": frozenset({"smart_review"}),
    "adjust": frozenset({"smart_review"}),
    "confirm": frozenset({"client_confirmation"}),
    "client_reject": frozenset({"client_confirmation"}),
    "request_changes": frozenset({"client_confirmation"}),
    "warn_expiry": frozenset({"client_confirmation"}),
    "expire": frozenset({"client_confirmation"}),
    "request_cancellation": frozenset({"active"}),
    "approve_cancellation": frozenset({"cancellation_requested"}),
    "decline_cancellation": frozenset({"cancellation_requested"}),
    "complete": frozenset({"active"}),
}


@dataclass(frozen=True)
class ContactPerson:
    name: str
    email: str


@dataclass(frozen=True)
class ClientRef:
    """What orders knows of a client, from the clients service's events."""

    id: uuid.UUID
    name: str
    kind: str = "company"
    vat_id: str | None = None
    country: str = "DE"
    language: str = "de"
    standing: str = "ok"
    standing_reason: str | None = None



@dataclass(frozen=True)
class Confirmation:
    mode: str  # send | skip
    offer_valid_until: dt.date | None = None
    skip_reason: str | None = None
    separate_agreement: bool = False  # skipped, but a separate written agreement is attached


@dataclass(frozen=True)
class Flag:
    """Something the advisor should look at (not a rejection), with its figures."""

    code: str
    message: str
    figures: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Rejection:
    by: str  # advisor | client | offer_expired | automatic_check
    reason: str


@dataclass(frozen=True)
class IssuedInvoice:
    invoice_id: uuid.UUID
    number: str
    # what it billed, net: a final invoice less the installments it deducts (None: recorded before
    # the orders service kept amounts)
    net_amount: Decimal | None = None
    cancelled: bool = False  # by a cancellation invoice (kontor.invoice.cancelled.v1): no longer in the order value


@dataclass(frozen=True)
class InstallmentShare:
    """One installment as the client sees it: its date and share, and what it bills."""

    installment: Installment
    net: Decimal
    vat: Decimal | None
    gross: Decimal | None


@dataclass(frozen=True)
class Order:
    id: uuid.UUID
    member_id: str
    client: ClientRef
    contact_person: ContactPerson
    currency: str
    lines: tuple[Line, ...]
    status: str
    created_at: dt.datetime
    sector: str | None = None
    place_of_service: str | None = None
    project_name: str | None = None
    special_agreement: str | None = None
    description: str | None = None
    service_start: dt.date | None = None
    service_end: dt.date | None = None
    confirmation: Confirmation | None = None
    payment: PaymentTerms | None = None
    comment_for_advisors: str | None = None
    version: int = 1
    exchange_rate_eur: Decimal | None = None  # EUR per unit of the currency, stored on submission
    exchange_rate_date: dt.date | None = None  # the day it was stored (the submission's business date)
    flags: tuple[Flag, ...] = ()
    schedule: tuple[PlannedInvoice, ...] = ()
    activated_on: dt.date | None = None
    issued_invoices: tuple[IssuedInvoice, ...] = ()
    offer_warning_sent: bool = False
    rejection: Rejection | None = None
    changes_requested: str | None = None
    cancellation_reason: str | None = None
    duplicated_from: uuid.UUID | None = None
    contract: Contract | None = None  # recurring orders: see domain/contract.py (None: one-off)
    archived_lines: tuple[int, ...] = ()  # indexes of lines tidied up: fully invoiced, kept but not open

    @property
    def client_name(self) -> str:
        return self.client.name

    @property
    def client_id(self) -> uuid.UUID:
        return self.client.id

    @property
    def net_total(self) -> Decimal:
        """The net value: the sum of the regular lines (optional and alternative ones left out)."""
        return sum((line.net_amount for line in billable(self.lines)), Decimal(0))

    @property
    def vat(self) -> VatTreatment | None:
        if self.sector not in SECTORS or self.place_of_service not in PLACES:
            return None
        return determine_vat(sector=SECTORS[self.sector], place_of_service=self.place_of_service,
                             client_kind=self.client.kind, client_vat_id=self.client.vat_id)

    @property
    def vat_amount(self) -> Decimal | None:
        vat = self.vat
        return round_money(self.net_total * vat.rate / 100, self.currency) if vat else None

    @property
    def gross_total(self) -> Decimal | None:
        amount = self.vat_amount
        return self.net_total + amount if amount is not None else None

    def installment_plan(self) -> tuple[InstallmentShare, ...]:
        """What each installment bills, as the client is shown it before confirming: its net amount (the last one
        the remainder, as the schedule will plan it) and, when the VAT is known, its VAT and gross amount (the final
        invoice deducts the earlier ones' VAT from the order's, so the shares add up to the order's totals)."""
        items = self.payment.installments if self.payment and self.payment.mode == "installments" else ()
        vat, total_vat = self.vat, self.vat_amount
        plan: list[InstallmentShare] = []
        nets = installment_amounts(items, total=self.net_total, currency=self.currency, lines=self.lines)
        for i, (item, net) in enumerate(zip(items, nets, strict=True)):
            tax: Decimal | None = None
            if vat is not None and total_vat is not None:
                earlier = sum((share.vat or Decimal(0) for share in plan), Decimal(0))
                tax = total_vat - earlier if i == len(items) - 1 else round_money(net * vat.rate / 100, self.currency)
            plan.append(InstallmentShare(item, net, tax, net + tax if tax is not None else None))
        return tuple(plan)

    @property
    def payment_guarantee(self) -> bool:
        """Confirmed by the client (or skipped with a separate agreement), and not paid after completion."""
        if self.payment is None or self.payment.mode == "after_completion" or self.confirmation is None:
            return False
        return self.confirmation.mode == "send" or self.confirmation.separate_agreement

    @property
    def all_invoices_issued(self) -> bool:
        return bool(self.schedule) and len(self.issued_invoices) >= len(self.schedule)


# -- input -------------------------------------------------------------------------------

def _decimal(value: object, name: str, errors: list[tuple[str, str]], *, maximum: Decimal) -> Decimal | None:
    try:
        d = Decimal(str(value))
    except (InvalidOperation, ValueError):
        errors.append((name, f"{value!r} is not a decimal number"))
        return None
    if not d.is_finite() or d <= 0:
        errors.append((name, "must be greater than 0"))
        return None
    if d > maximum:
        errors.append((name, f"must be at most {maximum}"))
        return None
    return plain(d)


def plain(d: Decimal) -> Decimal:
    """`d` without exponent notation: "1E+2" is stored, and shown on invoices, as 100."""
    exponent = d.as_tuple().exponent
    return Decimal(f"{d:f}") if isinstance(exponent, int) and exponent > 0 else d


def _text(value: str | None) -> str | None:
    if value is None:
        return None
    value = value.strip()
    return value or None


def parse_lines(raw_lines: list[dict], currency: str, errors: list[tuple[str, str]]) -> tuple[Line, ...]:
    if not raw_lines:
        errors.append(("lines", "at least one line item is required"))
    if len(raw_lines) > MAX_LINES:
        errors.append(("lines", f"at most {MAX_LINES} line items"))
        return ()
    parsed: list[Line] = []
    for i, raw in enumerate(raw_lines):
        quantity = _decimal(raw.get("quantity"), f"lines.{i}.quantity", errors, maximum=MAX_QUANTITY)
        price = _decimal(raw.get("unit_price"), f"lines.{i}.unit_price", errors, maximum=MAX_AMOUNT)
        if raw.get("unit") not in UNITS:
            errors.append((f"lines.{i}.unit", f"must be one of {', '.join(UNITS)}"))
        if not _text(raw.get("description")):
            errors.append((f"lines.{i}.description", "is required"))
        if price is not None and currency in MINOR_UNITS:
            try:
                check_currency_decimals(price, currency, "unit_price")
            except ValueError:
                errors.append((f"lines.{i}.unit_price", f"{currency} has {MINOR_UNITS[currency]} decimal places"))
                price = None
        kind = raw.get("kind") or "regular"
        if kind not in LINE_KINDS:
            errors.append((f"lines.{i}.kind", f"must be one of {', '.join(LINE_KINDS)}"))
        unit = raw.get("unit")
        if (kind in LINE_KINDS and quantity is not None and price is not None and currency in MINOR_UNITS
                and isinstance(unit, str)):
            parsed.append(Line(description=_text(raw.get("description")) or "", quantity=quantity,
                               unit=unit, unit_price=price,
                               net_amount=round_money(quantity * price, currency), kind=kind))
    if parsed and not billable(tuple(parsed)):
        errors.append(("lines", "at least one line item must be regular (not optional or alternative)"))
    return tuple(parsed)


def amount_errors(order: Order) -> list[tuple[str, str]]:
    """The order's total, net and with VAT, must be an amount every invoice of it can bill."""
    if order.net_total > MAX_AMOUNT:
        return [("lines", f"the order's net total {order.net_total} {order.currency} is above {MAX_AMOUNT}")]
    gross = order.gross_total
    if gross is not None and gross > MAX_AMOUNT:
        return [("lines", f"the order's total with VAT {gross} {order.currency} is above {MAX_AMOUNT}")]
    return []


def date_errors(order: Order) -> list[tuple[str, str]]:
    """Every date of the order in the business range (see `schedule.date_error`)."""
    errors = date_error("service_period.start", order.service_start)
    errors += date_error("service_period.end", order.service_end)
    if order.confirmation is not None:
        errors += date_error("confirmation.offer_valid_until", order.confirmation.offer_valid_until)
    if order.payment is not None:
        errors += terms_date_errors(order.payment)
    return errors


def build_draft(*, order_id: uuid.UUID, member_id: str, client: ClientRef | None, client_id: uuid.UUID,
                fields: dict, now: dt.datetime, version: int = 1, created_at: dt.datetime | None = None,
                duplicated_from: uuid.UUID | None = None) -> Order:
    """A draft from the member's input: every given field must be well-formed, but a draft
    may leave out what only submission requires."""
    errors: list[tuple[str, str]] = []
    if client is None:
        errors.append(("client_id", f"unknown client {client_id}: register it with the clients service first"))
    contact = fields["contact_person"]
    if not _text(contact.get("name")):
        errors.append(("contact_person.name", "is required"))
    if not EMAIL_RE.match(contact.get("email") or ""):
        errors.append(("contact_person.email", f"{contact.get('email')!r} is not a valid e-mail address"))
    currency = fields.get("currency") or "EUR"
    if currency not in CURRENCIES:
        errors.append(("currency", f"must be one of {', '.join(CURRENCIES)}"))
    lines = parse_lines(fields.get("lines") or [], currency, errors)
    sector = fields.get("sector")
    if sector is not None and sector not in SECTORS:
        errors.append(("sector", f"unknown sector {sector!r} (see GET /sectors)"))
    place = fields.get("place_of_service")
    if place is not None and place not in PLACES:
        errors.append(("place_of_service", f"must be one of {', '.join(PLACES)}"))
    start, end = fields.get("service_start"), fields.get("service_end")
    if start and end and start > end:
        errors.append(("service_period.end", "the service period ends before it starts"))
    confirmation = fields.get("confirmation")
    if confirmation is not None:
        if confirmation.mode not in ("send", "skip"):
            errors.append(("confirmation.mode", "must be send or skip"))
        if confirmation.mode == "skip" and not _text(confirmation.skip_reason):
            errors.append(("confirmation.skip_reason", "say why the client confirmation is skipped"))
        if confirmation.mode == "send" and confirmation.offer_valid_until is None:
            errors.append(("confirmation.offer_valid_until", "is required when the order is sent for confirmation"))
    payment: PaymentTerms | None = fields.get("payment")
    if payment is not None:
        payment = replace(payment, installments=tuple(
            replace(i, amount=plain(i.amount) if i.amount is not None else None,
                    percentage=plain(i.percentage) if i.percentage is not None else None)
            for i in payment.installments))
    errors += date_error("service_period.start", start) + date_error("service_period.end", end)
    if confirmation is not None:
        errors += date_error("confirmation.offer_valid_until", confirmation.offer_valid_until)
    if payment is not None:
        errors += terms_date_errors(payment)
    if payment is not None and start and end and lines and not errors:
        errors.extend(validate_terms(payment, total=sum((line.net_amount for line in billable(lines)), Decimal(0)),
                                     currency=currency, service_start=start, service_end=end, lines=lines))
    if errors or client is None:  # an unknown client is one of the errors
        raise InvalidInput(errors)
    draft = Order(
        id=order_id, member_id=member_id, client=client,
        contact_person=ContactPerson(_text(contact["name"]) or "", contact["email"].strip()),
        currency=currency, lines=lines, status="draft", created_at=created_at or now, sector=sector,
        place_of_service=place, project_name=_text(fields.get("project_name")),
        special_agreement=_text(fields.get("special_agreement")), description=_text(fields.get("description")),
        service_start=start, service_end=end, confirmation=confirmation, payment=payment,
        comment_for_advisors=_text(fields.get("comment_for_advisors")), version=version,
        duplicated_from=duplicated_from,
    )
    if errors := amount_errors(draft):
        raise InvalidInput(errors)
    return draft


def missing_for_submission(order: Order, *, today: dt.date) -> list[tuple[str, str]]:
    errors = date_errors(order) + amount_errors(order)
    if errors:
        return errors
    for name in ("sector", "place_of_service", "project_name", "description", "confirmation", "payment"):
        if getattr(order, name) is None:
            errors.append((name, "is required to submit the order"))
    if order.service_start is None or order.service_end is None:
        errors.append(("service_period", "is required to submit the order"))
    c = order.confirmation
    if c is not None and c.mode == "send" and c.offer_valid_until is not None and c.offer_valid_until < today:
        errors.append(("confirmation.offer_valid_until", "must not be in the past"))
    if order.payment is not None and order.service_start and order.service_end:
        errors.extend(validate_terms(order.payment, total=order.net_total, currency=order.currency,
                                     service_start=order.service_start, service_end=order.service_end,
                                     lines=order.lines))
    return errors


# -- transitions ----------------------------------------------------------------------------

def require(order: Order, action: str) -> None:
    lifecycle.require(order, action, TRANSITIONS, "an order")


_next = lifecycle.next_version
T = TypeVar("T")


def submitted(value: T | None, name: str) -> T:
    """A field that missing_for_submission requires: every order past its draft has it."""
    if value is None:
        raise InvalidInput(field=name, message="is required to submit the order")
    return value


def edit(order: Order, new: Order) -> Order:
    require(order, "edit")
    return replace(new, id=order.id, status="draft", created_at=order.created_at, version=order.version + 1,
                   changes_requested=order.changes_requested, duplicated_from=order.duplicated_from)


def submit(order: Order, *, today: dt.date, exchange_rate_eur: Decimal, rejection: Rejection | None,
           flags: tuple[Flag, ...]) -> Order:
    """To review, or straight to `rejected` when an automatic check failed."""
    require(order, "submit")
    if errors := missing_for_submission(order, today=today):
        raise InvalidInput(errors)
    if rejection:
        return _next(order, status="rejected", rejection=rejection, exchange_rate_eur=exchange_rate_eur,
                     exchange_rate_date=today, flags=flags)
    return _next(order, status="smart_review", exchange_rate_eur=exchange_rate_eur, exchange_rate_date=today,
                 flags=flags, changes_requested=None, rejection=None)


def approve(order: Order, *, today: dt.date) -> Order:
    """To the client's confirmation, or active at once when confirmation was skipped."""
    require(order, "approve")
    if order.client.standing == "blocked":
        raise Conflict(f"the client is blocked: {order.client.standing_reason or 'no reason given'}",
                       current_status=order.status)
    if errors := date_errors(order) + amount_errors(order):
        raise InvalidInput(errors)  # an order stored before dates and amounts were bounded
    confirmation = submitted(order.confirmation, "confirmation")
    if confirmation.mode == "send":
        if submitted(confirmation.offer_valid_until, "confirmation.offer_valid_until") < today:
            raise Conflict("the offer's validity has passed; the member must duplicate and resubmit the order",
                           current_status=order.status)
        return _next(order, status="client_confirmation")
    return activate(_next(order, status="active"), today=today)


INSTALLMENT_LABEL = {"de": "Abschlag", "en": "Installment"}


def activate(order: Order, *, today: dt.date) -> Order:
    """Active, with the planned invoices computed as of the activation day."""
    installment_label = INSTALLMENT_LABEL.get(order.client.language, "Installment")
    schedule = compute_schedule(submitted(order.payment, "payment"), order.lines, currency=order.currency,
                                service_start=submitted(order.service_start, "service_period"),
                                service_end=submitted(order.service_end, "service_period"), activated_on=today,
                                label=installment_label)
    return replace(order, status="active", activated_on=today, schedule=schedule)


def reject(order: Order, *, by: str, reason: str, action: str = "reject") -> Order:
    require(order, action)
    if not _text(reason):
        raise InvalidInput(field="reason", message="say why the order is rejected")
    return _next(order, status="rejected", rejection=Rejection(by=by, reason=reason.strip()))


ADJUSTABLE = ("project_name", "description", "special_agreement", "line_descriptions")


def adjust(order: Order, changes: dict) -> tuple[Order, list[dict]]:
    """An advisor's minor adjustment: texts only, never scope or amounts. Returns the
    order and what changed (field, before, after) for the history."""
    require(order, "adjust")
    unknown = set(changes) - set(ADJUSTABLE)
    if unknown:
        raise InvalidInput([(f, "advisors may only adjust texts, never scope or amounts") for f in sorted(unknown)])
    diff: list[dict] = []
    updates: dict = {}
    for name in ("project_name", "description", "special_agreement"):
        if name in ("project_name", "description") and name in changes and not _text(changes[name]):
            raise InvalidInput(field=name, message="is required: an order under review keeps it")
        if name in changes and _text(changes[name]) != getattr(order, name):
            diff.append({"field": name, "before": getattr(order, name), "after": _text(changes[name])})
            updates[name] = _text(changes[name])
    lines = list(order.lines)
    for key, text in (changes.get("line_descriptions") or {}).items():
        i = int(key)
        if not 0 <= i < len(lines):
            raise InvalidInput(field=f"line_descriptions.{key}", message="no such line")
        description = _text(text)
        if not description:
            raise InvalidInput(field=f"line_descriptions.{key}", message="is required")
        if lines[i].description != description:
            diff.append({"field": f"lines.{i}.description", "before": lines[i].description, "after": description})
            lines[i] = replace(lines[i], description=description)
    if not diff:
        return order, []
    return _next(order, lines=tuple(lines), **updates), diff


def confirm(order: Order, *, today: dt.date) -> Order:
    require(order, "confirm")
    return activate(_next(order, status="active"), today=today)


def request_changes(order: Order, message: str) -> Order:
    require(order, "request_changes")
    if not _text(message):
        raise InvalidInput(field="message", message="say what should change")
    return _next(order, status="draft", changes_requested=message.strip(), offer_warning_sent=False)


def warn_expiry(order: Order) -> Order:
    require(order, "warn_expiry")
    return _next(order, offer_warning_sent=True)


def expire(order: Order) -> Order:
    require(order, "expire")
    valid_until = submitted(submitted(order.confirmation, "confirmation").offer_valid_until,
                             "confirmation.offer_valid_until")
    return _next(order, status="rejected", rejection=Rejection(
        by="offer_expired", reason=f"the offer was valid until {valid_until.isoformat()}"))


def request_cancellation(order: Order, reason: str) -> Order:
    require(order, "request_cancellation")
    if not _text(reason):
        raise InvalidInput(field="reason", message="say why the order should be cancelled")
    return _next(order, status="cancellation_requested", cancellation_reason=reason.strip())


def decide_cancellation(order: Order, *, approve: bool, cancel_invoice_ids: tuple[uuid.UUID, ...] = ()) -> Order:
    require(order, "approve_cancellation" if approve else "decline_cancellation")
    known = {i.invoice_id for i in order.issued_invoices}
    unknown = [str(i) for i in cancel_invoice_ids if i not in known]
    if unknown:
        raise InvalidInput(field="cancel_invoice_ids", message=f"not invoices of this order: {', '.join(unknown)}")
    return _next(order, status="cancelled" if approve else "active")


def complete(order: Order, *, today: dt.date) -> Order:
    """Once the service period is over and every scheduled invoice is issued."""
    require(order, "complete")
    if order.service_end is None or today <= order.service_end:
        raise Conflict(f"the service period runs until {order.service_end}", current_status=order.status)
    if not order.all_invoices_issued:
        raise Conflict(f"{len(order.issued_invoices)} of {len(order.schedule)} scheduled invoices are issued",
                       current_status=order.status)
    if order.contract is not None and order.contract.kind == "auto_renew" and order.contract.state in (
            "running", "paused"):
        raise Conflict("the contract renews automatically: cancel it before the notice deadline to let it end",
                       current_status=order.status)
    return _next(order, status="completed")


def record_issued_invoice(order: Order, invoice_id: uuid.UUID, number: str,
                          net_amount: Decimal | None = None) -> Order | None:
    """Issued invoices are kept in the order of their numbers: invoicing publishes each invoice
    keyed by its own id, so two invoices of one order may arrive in either order."""
    if any(i.invoice_id == invoice_id for i in order.issued_invoices):
        return None
    issued = (*order.issued_invoices, IssuedInvoice(invoice_id, number, net_amount))
    return _next(order, issued_invoices=tuple(sorted(issued, key=lambda i: _number_order(i.number))))


def _number_order(number: str) -> tuple[tuple[int, int | str], ...]:
    """Invoice numbers compared part by part, digits as numbers ("2027-000002" before "2027-000010",
    "2027-999999" before "2027-1000000")."""
    return tuple((0, int(part)) if part.isdigit() else (1, part) for part in re.split(r"(\d+)", number) if part)


def record_cancelled_invoice(order: Order, invoice_id: uuid.UUID) -> Order | None:
    """The issued invoice was cancelled; None when it is unknown here or already cancelled."""
    if not any(i.invoice_id == invoice_id and not i.cancelled for i in order.issued_invoices):
        return None
    return _next(order, issued_invoices=tuple(replace(i, cancelled=True) if i.invoice_id == invoice_id else i
                                              for i in order.issued_invoices))


def duplicate(order: Order, *, new_id: uuid.UUID, member_id: str, client: ClientRef, now: dt.datetime) -> Order:
    """A new draft with the same content; dates and the schedule are the member's to check."""
    return Order(
        id=new_id, member_id=member_id, client=client, contact_person=order.contact_person,
        currency=order.currency, lines=order.lines, status="draft", created_at=now, sector=order.sector,
        place_of_service=order.place_of_service, project_name=order.project_name,
        special_agreement=order.special_agreement, description=order.description,
        service_start=order.service_start, service_end=order.service_end, confirmation=order.confirmation,
        payment=order.payment, comment_for_advisors=None, duplicated_from=order.id,
    )

