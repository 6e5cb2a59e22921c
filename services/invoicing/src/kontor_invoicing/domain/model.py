"""The invoice: lines, VAT breakdown and totals, status machine, numbering, payments,
reminders and cancellation. No I/O.

Totals follow EN 16931 (BR-CO-10..16): line nets are rounded to the currency's minor
unit, VAT is computed per category on the sum of its line nets, the gross is net + VAT.
A final installment invoice lists the whole order and deducts what the earlier
installments billed as a prepaid amount (BT-113), so the order total is billed once.
Issued invoices never change their content: only payments, reminders, disputes and
cancellation are recorded on them.

Issuing has three steps, so that the transaction holding the year's counter is short:
`queue_issue` puts a draft in `issuing` (a billing run, the member's "save and send", an
advisor after adjusting); the invoice is then `prepare`d (buyer data, what a final invoice
deducts) and its X-Rechnung checked outside any lock; `number` gives it its number (status
still `issuing`: its documents are being made); `documents_stored` makes it `invoiced`.
A cancellation invoice takes the same path and cancels its original in the last step.

Dates: an invoice is issued within the cooperative's business dates (`kontor.inputs`); date
arithmetic never overflows the calendar (a bound such as "drafts until" saturates, a due date
that cannot exist is refused naming its cause), whatever an order or a request carried.
Amounts: at most the currency's decimals, no line and no invoice above `MAX_AMOUNT`.
"""
from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from decimal import Decimal

from kontor import lifecycle
from kontor.errors import Conflict, InvalidInput
from kontor.inputs import (
    EARLIEST_DATE,
    LATEST_DATE,
    MAX_AMOUNT,
    check_currency_decimals,
)
from kontor.money import round_money

MAX_LINES = 200  # as many as an order may have (a final invoice lists the whole order)
STATUSES = ("draft", "waiting_for_adjustment", "issuing", "invoiced", "disputed", "paid", "cancelled", "discarded")
ZERO = Decimal(0)

TRANSITIONS: dict[str, frozenset[str]] = {
    "request_change": frozenset({"draft"}),
    "adjust": frozenset({"draft", "waiting_for_adjustment"}),
    "issue": frozenset({"draft", "waiting_for_adjustment"}),
    "number": frozenset({"issuing"}),
    "hold": frozenset({"draft", "issuing"}),
    "store_documents": frozenset({"issuing"}),
    "discard": frozenset({"draft", "waiting_for_adjustment"}),
    "dispute": frozenset({"invoiced"}),
    "resolve_dispute": frozenset({"disputed"}),
    "record_payment": frozenset({"invoiced", "disputed", "paid"}),
    "remind": frozenset({"invoiced"}),
    "cancel": frozenset({"invoiced", "disputed", "paid"}),
}


def days_after(day: dt.date, days: int) -> dt.date:
    """`day` moved by `days` (negative: before), saturating at the ends of the calendar: for
    bounds ("drafts until", "to be checked until"), where beyond the calendar nothing is due."""
    try:
        return day + dt.timedelta(days=days)
    except OverflowError:
        return dt.date.max if days > 0 else dt.date.min


def business_date(value: dt.date, field: str) -> dt.date:
    """`value` if it is one of the cooperative's business dates, else `InvalidInput` naming `field`."""
    if not EARLIEST_DATE <= value <= LATEST_DATE:
        raise InvalidInput(field=field, message=f"must be between {EARLIEST_DATE.isoformat()} and "
                                                f"{LATEST_DATE.isoformat()}")
    return value


def due_date(issue_date: dt.date, due_in_days: int) -> dt.date:
    """The due date of an invoice issued on `issue_date`; `InvalidInput` (naming `due_in_days`)
    when it would fall outside the calendar, instead of an overflow."""
    try:
        return issue_date + dt.timedelta(days=due_in_days)
    except OverflowError:
        raise InvalidInput(field="due_in_days", message=f"issued on {issue_date.isoformat()}, it would be due "
                                                        f"outside the calendar") from None


def format_number(year: int, sequence: int) -> str:
    """Invoice numbers are gapless per calendar year: 2026-000123."""
    if not 1 <= sequence <= 999_999:
        raise ValueError(f"invoice sequence {sequence} out of range for one year")
    return f"{year}-{sequence:06d}"


@dataclass(frozen=True)
class Line:
    description: str
    quantity: Decimal
    unit: str
    unit_price: Decimal
    net_amount: Decimal
    vat_category: str
    vat_rate: Decimal


@dataclass(frozen=True)
class VatBreakdown:
    category: str
    rate: Decimal
    taxable_amount: Decimal
    tax_amount: Decimal
    note: str | None = None


@dataclass(frozen=True)
class Payment:
    payment_id: uuid.UUID
    amount: Decimal
    received_on: dt.date
    recorded_by: str


@dataclass(frozen=True)
class Document:
    kind: str  # pdf | xrechnung
    filename: str
    media_type: str
    sha256: str


@dataclass(frozen=True)
class Invoice:
    id: uuid.UUID
    order_id: uuid.UUID
    member_id: str
    client_id: uuid.UUID
    seq: int  # the planned invoice of the order's schedule (0 for a cancellation invoice)
    kind: str  # invoice | cancellation
    schedule_kind: str  # advance | after_completion | installment | final | recurring | cancellation
    status: str
    currency: str
    lines: tuple[Line, ...]
    invoice_date: dt.date
    due_in_days: int
    created_at: dt.datetime
    project_name: str | None = None
    description: str | None = None
    vat_note: str | None = None
    service_period_start: dt.date | None = None
    service_period_end: dt.date | None = None
    contact_name: str | None = None
    contact_email: str | None = None
    buyer: dict = field(default_factory=dict)  # the client's billing data at drafting/issue time
    exchange_rate_eur: Decimal | None = None
    prepaid_amount: Decimal = ZERO  # final invoice: gross of the earlier installments
    number: str | None = None
    issue_date: dt.date | None = None
    due_date: dt.date | None = None
    payments: tuple[Payment, ...] = ()
    reminders_sent: int = 0
    last_reminder_on: dt.date | None = None
    change_request: str | None = None
    dispute: str | None = None
    cancels_invoice_id: uuid.UUID | None = None
    cancels_number: str | None = None
    cancels_issue_date: dt.date | None = None
    cancelled_by: uuid.UUID | None = None  # the cancellation invoice
    refund_due: Decimal = ZERO
    documents: tuple[Document, ...] = ()
    adjustments: tuple[dict, ...] = ()
    validation_errors: tuple[str, ...] = ()
    issue_on: dt.date | None = None  # the issue date asked for when it was queued for issuing
    issued_by: dict | None = None  # who asked for it to be issued (an actor: kind, id, name); None: a billing run
    run_id: uuid.UUID | None = None  # the billing run that queued it, if one did
    cancellation_reason: str | None = None
    version: int = 1

    # -- totals -------------------------------------------------------------------------
    @property
    def buyer_reference(self) -> str:
        """BT-10: the public body's Leitweg-ID, else the project name, else the order number."""
        return self.buyer.get("leitweg_id") or self.project_name or str(self.order_id)

    @property
    def vat_breakdown(self) -> tuple[VatBreakdown, ...]:
        groups: dict[tuple[str, Decimal], Decimal] = {}
        for line in self.lines:
            key = (line.vat_category, line.vat_rate)
            groups[key] = groups.get(key, ZERO) + line.net_amount
        return tuple(VatBreakdown(category, rate, base, round_money(base * rate / 100, self.currency),
                                  self.vat_note if category != "S" else None)
                     for (category, rate), base in sorted(groups.items()))

    @property
    def net_total(self) -> Decimal:
        return sum((line.net_amount for line in self.lines), ZERO)

    @property
    def tax_total(self) -> Decimal:
        return sum((v.tax_amount for v in self.vat_breakdown), ZERO)

    @property
    def gross_total(self) -> Decimal:
        return self.net_total + self.tax_total

    @property
    def amount_due(self) -> Decimal:
        return self.gross_total - self.prepaid_amount

    @property
    def paid_total(self) -> Decimal:
        return sum((p.amount for p in self.payments), ZERO)

    @property
    def open_amount(self) -> Decimal:
        return max(self.amount_due - self.paid_total, ZERO)

    @property
    def overpaid_amount(self) -> Decimal:
        return max(self.paid_total - self.amount_due, ZERO)


def priced_line(invoice: Invoice, *, description: str, quantity: Decimal, unit: str, unit_price: Decimal) -> Line:
    """A line for this invoice: net rounded to its currency, VAT as the order determined it
    (an adjustment changes texts and figures, never the tax treatment)."""
    first = invoice.lines[0]
    return Line(description, quantity, unit, unit_price, round_money(quantity * unit_price, invoice.currency),
                first.vat_category, first.vat_rate)


def _decimals_error(amount: Decimal, currency: str, field: str) -> str | None:
    try:
        check_currency_decimals(amount, currency, field)
    except ValueError as e:
        return str(e).removeprefix(f"{field}: ")
    return None


def adjusted_lines(invoice: Invoice, lines: object) -> tuple[Line, ...]:
    """The lines an advisor gives (description, quantity, unit, unit price each), priced for this
    invoice: at least one, at most `MAX_LINES`, unit prices with at most the currency's decimals,
    no line's net above `MAX_AMOUNT`. `InvalidInput` names each line's field at fault."""
    if not isinstance(lines, Sequence) or isinstance(lines, str):
        raise InvalidInput(field="lines", message="a list of lines")
    if not lines:
        raise InvalidInput(field="lines", message="at least one line")
    if len(lines) > MAX_LINES:
        raise InvalidInput(field="lines", message=f"at most {MAX_LINES} lines")
    errors: list[tuple[str, str]] = []
    priced: list[Line] = []
    for i, line in enumerate(lines):
        if not isinstance(line, Mapping):
            errors.append((f"lines.{i}", "a line: description, quantity, unit, unit_price"))
            continue
        unit_price = line.get("unit_price")
        if not isinstance(unit_price, Decimal) or not isinstance(line.get("quantity"), Decimal):
            errors.append((f"lines.{i}", "quantity and unit_price are decimal numbers"))
            continue
        if reason := _decimals_error(unit_price, invoice.currency, f"lines.{i}.unit_price"):
            errors.append((f"lines.{i}.unit_price", reason))
            continue
        p = priced_line(invoice, description=line["description"], quantity=line["quantity"], unit=line["unit"],
                        unit_price=unit_price)
        if p.net_amount > MAX_AMOUNT:
            errors.append((f"lines.{i}", f"its net amount ({p.net_amount}) must not exceed {MAX_AMOUNT}"))
        priced.append(p)
    if errors:
        raise InvalidInput(errors)
    return tuple(priced)


def require(invoice: Invoice, action: str) -> None:
    lifecycle.require(invoice, action, TRANSITIONS, "an invoice")


_next = lifecycle.next_version


def request_change(invoice: Invoice, message: str) -> Invoice:
    require(invoice, "request_change")
    if not (message or "").strip():
        raise InvalidInput(field="message", message="say what should change")
    return _next(invoice, status="waiting_for_adjustment", change_request=message.strip())


ADJUSTABLE = ("lines", "project_name", "description", "invoice_date", "due_in_days")
NOT_NULL = ("lines", "invoice_date", "due_in_days")  # the texts may be cleared, these not
MAX_DUE_IN_DAYS = 120


def adjust(invoice: Invoice, changes: dict, *, by: str, at: dt.datetime, today: dt.date) -> Invoice:
    """An advisor adjusts a draft or a waiting invoice (lines as given: description, quantity,
    unit, unit price; texts; invoice date; payment term); recorded."""
    require(invoice, "adjust")
    _not_a_cancellation(invoice, "adjusted")
    unknown = set(changes) - set(ADJUSTABLE)
    if unknown:
        raise InvalidInput([(f, "cannot be adjusted") for f in sorted(unknown)])
    nulls = [(f, "must not be null") for f in NOT_NULL if f in changes and changes[f] is None]
    if nulls:
        raise InvalidInput(nulls)
    changes = dict(changes)
    if "invoice_date" in changes:
        if changes["invoice_date"] < today:
            raise InvalidInput(field="invoice_date", message="must not be in the past")
        business_date(changes["invoice_date"], "invoice_date")
    if "due_in_days" in changes and not 0 <= changes["due_in_days"] <= MAX_DUE_IN_DAYS:
        raise InvalidInput(field="due_in_days", message=f"between 0 and {MAX_DUE_IN_DAYS} days")
    if "lines" in changes:
        changes["lines"] = adjusted_lines(invoice, changes["lines"])
        total = replace(invoice, lines=changes["lines"]).gross_total
        if total > MAX_AMOUNT:
            raise InvalidInput(field="lines", message=f"the invoice's gross total ({total}) must not exceed "
                                                      f"{MAX_AMOUNT}")
    diff = {k: {"before": _plain(getattr(invoice, k)), "after": _plain(v)} for k, v in changes.items()
            if getattr(invoice, k) != v}
    if not diff:
        return invoice
    record = {"by": by, "at": at.isoformat(), "changes": diff}
    return _next(invoice, **changes, adjustments=invoice.adjustments + (record,))


def _plain(value):
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    if isinstance(value, Line):
        return {k: str(v) for k, v in vars(value).items()}
    if isinstance(value, (dt.date, Decimal)):
        return str(value)
    return value


def queue_issue(invoice: Invoice, *, on: dt.date, run_id: uuid.UUID | None = None,
                by: dict | None = None) -> Invoice:
    """To be issued as of `on`: by a billing run (its as-of), or by "save and send" or an
    advisor (today); `on` is a business date, and its due date must exist."""
    require(invoice, "issue")
    business_date(on, "issue_date")
    if invoice.kind != "cancellation":
        due_date(on, invoice.due_in_days)
    return _next(invoice, status="issuing", issue_on=on, run_id=run_id, issued_by=by, number=None,
                 validation_errors=())


def issue(invoice: Invoice, *, number: str, issue_date: dt.date) -> Invoice:
    """Number and date; the due date follows. From a draft too (what was issued before the
    steps were split, and tests that need an issued invoice); `status` stays `issuing` while
    the documents are made when it comes from there."""
    if invoice.status != "issuing":
        require(invoice, "issue")
    status = "issuing" if invoice.status == "issuing" else "invoiced"
    due = issue_date if invoice.kind == "cancellation" else due_date(issue_date, invoice.due_in_days)
    return _next(invoice, status=status, number=number, issue_date=issue_date, due_date=due, validation_errors=())


def prepare(invoice: Invoice, *, buyer: dict | None, order_invoices: list[Invoice]) -> Invoice:
    """What an invoice is issued with: the client's billing data as known now (else what the
    draft has; a cancellation invoice keeps its original's) and, for a final invoice, what the
    earlier installments billed."""
    if invoice.kind == "cancellation":
        return invoice
    return replace(invoice, buyer=buyer or invoice.buyer, prepaid_amount=prepaid(invoice, order_invoices))


PROVISIONAL_SEQUENCE = 999_999  # for checking the X-Rechnung before a number is taken


def provisional(prepared: Invoice) -> Invoice:
    """The invoice as it will be issued, with a stand-in number of the same form (the rules
    check the number's presence, never its value), so it can be checked before numbering."""
    on = prepared.issue_on or prepared.invoice_date
    return issue(prepared, number=format_number(on.year, PROVISIONAL_SEQUENCE), issue_date=on)


def number(prepared: Invoice, *, sequence: int) -> Invoice:
    """The prepared invoice gets its number of the year it is issued in."""
    require(prepared, "number")
    on = prepared.issue_on or prepared.invoice_date
    return issue(prepared, number=format_number(on.year, sequence), issue_date=on)


def documents_stored(invoice: Invoice, documents: tuple[Document, ...]) -> Invoice:
    """Its PDF and X-Rechnung are stored: issued."""
    require(invoice, "store_documents")
    if invoice.number is None:
        raise ValueError("an invoice gets its documents after its number")
    return _next(invoice, status="invoiced", documents=documents)


def waits_for_installments(invoice: Invoice, order_invoices: list[Invoice]) -> bool:
    """A final invoice is prepared only once no installment of its order is being issued or due
    as of its date: until then, what it deducts is not known (it would bill them twice)."""
    if invoice.kind != "invoice" or invoice.schedule_kind != "final":
        return False
    on = invoice.issue_on or invoice.invoice_date
    return any(i.id != invoice.id and i.kind == "invoice" and i.schedule_kind == "installment"
               and (i.status == "issuing" or (i.status == "draft" and i.invoice_date <= on))
               for i in order_invoices)


def prepaid(invoice: Invoice, order_invoices: list[Invoice]) -> Decimal:
    """What a final invoice deducts: the gross of the order's installment invoices that are
    issued and not cancelled (a cancelled installment is not deducted). Other invoices deduct
    nothing."""
    if invoice.kind != "invoice" or invoice.schedule_kind != "final":
        return ZERO
    return sum((i.gross_total for i in order_invoices
                if i.id != invoice.id and i.kind == "invoice" and i.schedule_kind == "installment"
                and i.status in ("invoiced", "paid", "disputed")), ZERO)


def hold_for_adjustment(invoice: Invoice, errors: tuple[str, ...]) -> Invoice:
    """Its X-Rechnung failed the official rules (or, a draft, it cannot be issued as it is): not
    numbered, not sent; an advisor adjusts it."""
    require(invoice, "hold")
    return _next(invoice, status="waiting_for_adjustment", validation_errors=errors, number=None, issue_date=None,
                 due_date=None)


def _not_a_cancellation(invoice: Invoice, action: str, instead: str = "issue it") -> None:
    if invoice.kind == "cancellation":
        raise Conflict(f"a cancellation invoice mirrors its original and cannot be {action}; {instead}",
                       current_status=invoice.status)


def discard(invoice: Invoice) -> Invoice:
    require(invoice, "discard")
    _not_a_cancellation(invoice, "discarded")
    return _next(invoice, status="discarded")


def dispute(invoice: Invoice, objection: str) -> Invoice:
    require(invoice, "dispute")
    if not (objection or "").strip():
        raise InvalidInput(field="objection", message="record the client's objection")
    return _next(invoice, status="disputed", dispute=objection.strip())


def resolve_dispute(invoice: Invoice) -> Invoice:
    """Back to `invoiced` (to cancel instead, cancel it)."""
    require(invoice, "resolve_dispute")
    return _next(invoice, status="paid" if invoice.open_amount == 0 else "invoiced")


def record_payment(invoice: Invoice, *, payment_id: uuid.UUID, amount: Decimal, received_on: dt.date,
                   by: str, latest: dt.date | None = None) -> Invoice:
    """A payment in the invoice's currency (at most its decimals, at most `MAX_AMOUNT`), received
    on a business date and, given `latest` (today), not after it: a bookkeeper records what
    the bank statement shows, never a payment still to come. Partial ones keep the invoice
    open, an overpayment is kept. A cancellation invoice is not paid: what was paid on its
    original is to be refunded."""
    _not_a_cancellation(invoice, "paid", "what was paid on the original is refunded")
    require(invoice, "record_payment")
    reason = _decimals_error(amount, invoice.currency, "amount") if amount.is_finite() else "a finite number"
    if reason is None and not 0 < amount <= MAX_AMOUNT:
        reason = f"greater than 0 and at most {MAX_AMOUNT}"
    if reason:
        raise InvalidInput(field="amount", message=f"a positive amount in {invoice.currency}: {reason}")
    amount = round_money(amount, invoice.currency)  # 1E+2 is stored as 100.00
    business_date(received_on, "received_on")
    if latest is not None and received_on > latest:
        raise InvalidInput(field="received_on", message=f"must not be after today ({latest.isoformat()})")
    if any(p.payment_id == payment_id for p in invoice.payments):
        return invoice
    paid = _next(invoice, payments=invoice.payments + (Payment(payment_id, amount, received_on, by),))
    if paid.status == "invoiced" and paid.open_amount == 0:
        paid = replace(paid, status="paid")
    return paid


def reminders_due(invoice: Invoice, as_of: dt.date, schedule: tuple[int, ...]) -> int:
    """How many reminders should have gone out by `as_of` (days after the due date)."""
    if invoice.kind != "invoice" or invoice.status != "invoiced" or invoice.due_date is None \
            or invoice.open_amount == 0 or invoice.cancelled_by is not None:
        return 0
    overdue_days = (as_of - invoice.due_date).days  # a difference of dates never overflows
    return sum(1 for days in schedule if overdue_days >= days)


def reminder_cutoff(as_of: dt.date, days: int) -> dt.date | None:
    """The latest due date whose reminder `days` after it is due as of `as_of`; None when no
    date of the calendar is that early."""
    try:
        return as_of - dt.timedelta(days=days)
    except OverflowError:
        return None if days > 0 else dt.date.max


def remind(invoice: Invoice, *, on: dt.date) -> Invoice:
    require(invoice, "remind")
    return _next(invoice, reminders_sent=invoice.reminders_sent + 1, last_reminder_on=on)


def request_cancellation(invoice: Invoice, *, cancellation_id: uuid.UUID, on: dt.date, reason: str,
                         now: dt.datetime, by: dict | None = None) -> tuple[Invoice, Invoice]:
    """The original, marked as being cancelled by `cancellation_id`, and its cancellation
    invoice, queued for issuing (type 381: the same lines with positive amounts, referring to
    the original, dated no earlier than it). The original becomes `cancelled` when the
    cancellation invoice's documents are stored (`cancel`)."""
    # A cancellation invoice is final: cancelling it would revive the invoice it cancelled.
    if invoice.kind == "cancellation":
        raise Conflict(f"a cancellation invoice cannot be cancelled (it cancels invoice "
                       f"{invoice.cancels_number or invoice.cancels_invoice_id})", current_status=invoice.status)
    require(invoice, "cancel")
    if invoice.cancelled_by is not None:
        raise Conflict(f"invoice {invoice.number} is already being cancelled", current_status=invoice.status)
    if not (reason or "").strip():
        raise InvalidInput(field="reason", message="say why the invoice is cancelled")
    on = max(on, invoice.issue_date or on)
    original = _next(invoice, cancelled_by=cancellation_id, cancellation_reason=reason.strip())
    cancellation = replace(
        invoice, id=cancellation_id, seq=0, kind="cancellation", schedule_kind="cancellation", status="issuing",
        number=None, issue_on=on, issue_date=None, invoice_date=on, due_date=None, due_in_days=0, run_id=None,
        payments=(), reminders_sent=0, last_reminder_on=None, change_request=None, dispute=None,
        cancels_invoice_id=invoice.id, cancels_number=invoice.number, cancels_issue_date=invoice.issue_date,
        cancelled_by=None, refund_due=ZERO, documents=(), adjustments=(), validation_errors=(),
        cancellation_reason=reason.strip(), created_at=now, version=1, issued_by=by,
    )
    return original, cancellation


def cancel(invoice: Invoice, cancellation: Invoice) -> Invoice:
    """The cancellation invoice is issued: the original is `cancelled`, and what was paid on it
    is to be refunded."""
    require(invoice, "cancel")
    if invoice.cancelled_by != cancellation.id or cancellation.status != "invoiced":
        raise ValueError(f"invoice {invoice.id} is not cancelled by an issued {cancellation.id}")
    return _next(invoice, status="cancelled", refund_due=invoice.paid_total)


# -- what comes from the order ------------------------------------------------------------

DEFAULT_VAT = {"category": "S", "rate": "19"}


def draft_from_plan(plan: dict, order: dict, client: dict | None, *, invoice_id: uuid.UUID,
                    now: dt.datetime) -> Invoice:
    """The draft of one planned invoice of an order (the order and the client as the read
    models hold them, JSON). VAT as the order determined it (its first category; the standard
    rate when the order names none), the payment term of the order (14 days by default), the
    client's billing data when invoicing knows the client, else what the order carries."""
    vat = (order.get("vat") or [DEFAULT_VAT])[0]
    lines = tuple(Line(description=l["description"], quantity=Decimal(l["quantity"]), unit=l["unit"],
                       unit_price=Decimal(l["unit_price"]), net_amount=Decimal(l["net_amount"]),
                       vat_category=vat["category"], vat_rate=Decimal(vat["rate"])) for l in plan["lines"])
    buyer = dict(client or {})
    if not buyer:
        c = order["client"]
        buyer = {"name": c["name"], "kind": c["kind"], "vat_id": c.get("vat_id"), "language": c.get("language", "de"),
                 "address": {"country": c["country"]}}
    return Invoice(
        id=invoice_id, order_id=uuid.UUID(order["order_id"]), member_id=order["member_id"],
        client_id=uuid.UUID(order["client"]["client_id"]), seq=plan["seq"], kind="invoice",
        schedule_kind=plan["kind"], status="draft", currency=order["currency"], lines=lines,
        invoice_date=dt.date.fromisoformat(plan["invoice_date"]),
        due_in_days=(order.get("payment") or {}).get("due_in_days", 14), created_at=now,
        project_name=order.get("project_name"), description=order.get("description"),
        vat_note=vat.get("note") if order.get("vat") else None,
        service_period_start=dt.date.fromisoformat(plan["period_start"]) if plan.get("period_start") else None,
        service_period_end=dt.date.fromisoformat(plan["period_end"]) if plan.get("period_end") else None,
        contact_name=order["contact_person"]["name"], contact_email=order["contact_person"]["email"], buyer=buyer,
        exchange_rate_eur=Decimal(order["exchange_rate_eur"]) if order.get("exchange_rate_eur") else None,
    )


@dataclass(frozen=True)
class OrderCancellation:
    discard: tuple[Invoice, ...]  # drafts and invoices waiting for adjustment
    cancel: tuple[Invoice, ...]  # issued invoices the advisor named


def order_cancelled(invoices: list[Invoice], cancel_invoice_ids) -> OrderCancellation:
    """What a cancelled order does to its invoices: drafts are discarded; issued invoices are
    cancelled only when the advisor named them (and only those that can be cancelled and are
    not being cancelled already); anything else is left as it is."""
    named = set(cancel_invoice_ids)
    return OrderCancellation(
        discard=tuple(i for i in invoices if i.kind == "invoice" and i.status in TRANSITIONS["discard"]),
        cancel=tuple(i for i in invoices if i.id in named and i.kind == "invoice" and i.cancelled_by is None
                     and i.status in TRANSITIONS["cancel"]))
