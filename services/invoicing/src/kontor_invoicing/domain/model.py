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
from kontor.errors import Conflict, Forbidden, InvalidInput
from kontor.inputs import (
    EARLIEST_DATE,
    LATEST_DATE,
    MAX_AMOUNT,
    check_currency_decimals,
)
from kontor.money import round_money

MAX_LINES = 200  # as many as an order may have (a final invoice lists the whole order)
# `cancellation`: an issued cancellation invoice. It is never open, reminded, paid or disputed,
# and never a receivable: it reverses the invoice it refers to, which becomes `cancelled`.
STATUSES = ("draft", "waiting_for_adjustment", "issuing", "invoiced", "disputed", "paid", "cancelled", "discarded",
            "cancellation")
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
    "change_attachments": frozenset({"draft", "waiting_for_adjustment"}),
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
class Deduction:
    """A partial invoice that a final invoice deducts (§ 14 Abs. 5 UStG): its number and date,
    what it billed net, its VAT per rate, and its gross."""

    invoice_id: uuid.UUID
    number: str
    issue_date: dt.date
    net_amount: Decimal
    vat: tuple[VatBreakdown, ...]
    gross_amount: Decimal

    @property
    def tax_amount(self) -> Decimal:
        return sum((v.tax_amount for v in self.vat), ZERO)


@dataclass(frozen=True)
class OrderTotal:
    """The whole order, as a partial invoice states it beside what it bills."""

    net_amount: Decimal
    tax_amount: Decimal
    gross_amount: Decimal


@dataclass(frozen=True)
class Payment:
    payment_id: uuid.UUID
    amount: Decimal
    received_on: dt.date
    recorded_by: str


@dataclass(frozen=True)
class Document:
    kind: str  # pdf | xrechnung | attachment (a file added to the draft, sent with the invoice)
    filename: str
    media_type: str
    sha256: str
    attachment_id: uuid.UUID | None = None  # an attachment's id (its download)
    size: int | None = None  # an attachment's bytes


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
    exchange_rate_eur: Decimal | None = None  # EUR per one unit of the currency, as the order stored it
    exchange_rate_date: dt.date | None = None  # the day the order stored it (its submission), when known
    prepaid_amount: Decimal = ZERO  # final invoice: gross of the earlier installments
    deductions: tuple[Deduction, ...] = ()  # final invoice: the partial invoices it deducts (their gross: prepaid)
    installments: int | None = None  # installment or final invoice: how many invoices the order's schedule has
    order_total: OrderTotal | None = None  # installment or final invoice: the whole order
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
    def payable_amount(self) -> Decimal:
        """BT-115 of its X-Rechnung: the gross less what earlier partial invoices billed (for a
        cancellation invoice, type 381, what is credited)."""
        return self.gross_total - self.prepaid_amount

    @property
    def amount_due(self) -> Decimal:
        """What the client is to pay on this invoice: nothing on a cancellation invoice (it reverses
        its original; what was paid on that is refunded there)."""
        return round_money(ZERO, self.currency) if self.kind == "cancellation" else self.payable_amount

    @property
    def remaining_vat(self) -> tuple[VatBreakdown, ...]:
        """A final invoice's VAT per rate less the VAT of the partial invoices it deducts; otherwise its VAT."""
        deducted: dict[tuple[str, Decimal], tuple[Decimal, Decimal]] = {}
        for d in self.deductions:
            for v in d.vat:
                base, tax = deducted.get((v.category, v.rate), (ZERO, ZERO))
                deducted[(v.category, v.rate)] = (base + v.taxable_amount, tax + v.tax_amount)
        return tuple(replace(v, taxable_amount=v.taxable_amount - deducted.get((v.category, v.rate), (ZERO, ZERO))[0],
                             tax_amount=v.tax_amount - deducted.get((v.category, v.rate), (ZERO, ZERO))[1])
                     for v in self.vat_breakdown)

    @property
    def remaining_net(self) -> Decimal:
        return self.net_total - sum((d.net_amount for d in self.deductions), ZERO)

    @property
    def remaining_tax(self) -> Decimal:
        return self.tax_total - sum((d.tax_amount for d in self.deductions), ZERO)

    @property
    def tax_total_eur(self) -> Decimal | None:
        """BT-111: an invoice in another currency states its VAT total in EUR too (§ 16 Abs. 6 UStG), at
        the order's rate, to the cent (half up); None for an invoice in EUR or without a rate."""
        if self.currency == "EUR" or not self.exchange_rate_eur:
            return None
        return round_money(self.tax_total * self.exchange_rate_eur, "EUR")

    @property
    def paid_total(self) -> Decimal:
        return sum((p.amount for p in self.payments), ZERO)

    @property
    def open_amount(self) -> Decimal:
        """Nothing is open on a cancelled invoice (what was paid is refunded) nor on a cancellation invoice."""
        if self.status == "cancelled":
            return round_money(ZERO, self.currency)
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
    return _next(invoice, **changes, adjustments=(*invoice.adjustments, record))


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
    if invoice.kind == "cancellation" and invoice.cancels_issue_date and issue_date < invoice.cancels_issue_date:
        raise InvalidInput(field="issue_date", message=f"a cancellation invoice is dated on or after the invoice it "
                                                       f"cancels ({invoice.cancels_issue_date.isoformat()})")
    status = "issuing" if invoice.status == "issuing" else "invoiced"
    due = issue_date if invoice.kind == "cancellation" else due_date(issue_date, invoice.due_in_days)
    return _next(invoice, status=status, number=number, issue_date=issue_date, due_date=due, validation_errors=())


def prepare(invoice: Invoice, *, buyer: dict | None, order_invoices: list[Invoice]) -> Invoice:
    """What an invoice is issued with: the client's billing data as known now (else what the
    draft has; a cancellation invoice keeps its original's) and, for a final invoice, what the
    earlier installments billed."""
    if invoice.kind == "cancellation":
        return invoice
    taken = deductions(invoice, order_invoices)
    return replace(invoice, buyer=buyer or invoice.buyer, deductions=taken,
                   prepaid_amount=sum((d.gross_amount for d in taken), ZERO))


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
    """Its PDF and X-Rechnung are stored (and listed with the draft's files): issued."""
    require(invoice, "store_documents")
    if invoice.number is None:
        raise ValueError("an invoice gets its documents after its number")
    return _next(invoice, status="cancellation" if invoice.kind == "cancellation" else "invoiced",
                 documents=documents)


MAX_ATTACHMENTS = 20  # files added to one draft (each is fetched and sent with the invoice e-mail)


def may_change_attachments(invoice: Invoice, *, advisor: bool, count: int | None = None) -> None:
    """Files are added to or removed from a draft only: by its member while it is a draft, by an
    advisor also while it waits for adjustment; once issued they are kept with the invoice as
    they were. A cancellation invoice takes none. `count`: the files it has, when one is added."""
    if invoice.kind == "cancellation":
        raise Conflict("a cancellation invoice mirrors its original and takes no files",
                       current_status=invoice.status)
    allowed = TRANSITIONS["change_attachments"]
    if invoice.status not in allowed:
        raise Conflict(f"the files of an invoice in status {invoice.status} cannot be changed: they go out and stay "
                       f"as they were when it was issued (allowed from: {', '.join(sorted(allowed))})",
                       current_status=invoice.status)
    if invoice.status != "draft" and not advisor:
        raise Forbidden(f"an advisor changes the files of an invoice in status {invoice.status}")
    if count is not None and count >= MAX_ATTACHMENTS:
        raise InvalidInput(field="file", message=f"an invoice has at most {MAX_ATTACHMENTS} files")


def attachment_documents(rows: Sequence[Mapping]) -> tuple[Document, ...]:
    """The draft's files as documents of the issued invoice (in the order they were added)."""
    return tuple(Document("attachment", r["filename"], r["media_type"], r["sha256"], attachment_id=r["id"],
                          size=r["size"]) for r in rows)


def waits_for_installments(invoice: Invoice, order_invoices: list[Invoice]) -> bool:
    """A final invoice is prepared only once no installment of its order is being issued or due
    as of its date: until then, what it deducts is not known (it would bill them twice)."""
    if invoice.kind != "invoice" or invoice.schedule_kind != "final":
        return False
    on = invoice.issue_on or invoice.invoice_date
    return any(i.id != invoice.id and i.kind == "invoice" and i.schedule_kind == "installment"
               and (i.status == "issuing" or (i.status == "draft" and i.invoice_date <= on)
                    or (i.cancelled_by is not None and i.status != "cancelled"))  # its cancellation under way
               for i in order_invoices)


DEDUCTED_STATUSES = ("invoiced", "paid", "disputed")


def deductions(invoice: Invoice, order_invoices: list[Invoice]) -> tuple[Deduction, ...]:
    """What a final invoice deducts: the order's installment invoices that are issued and not
    cancelled (a cancelled installment is not deducted), in the order they were issued, each with
    its net, VAT per rate and gross. Other invoices deduct nothing."""
    if invoice.kind != "invoice" or invoice.schedule_kind != "final":
        return ()
    taken = sorted((i for i in order_invoices
                    if i.id != invoice.id and i.kind == "invoice" and i.schedule_kind == "installment"
                    and i.status in DEDUCTED_STATUSES and i.number is not None and i.issue_date is not None),
                   key=lambda i: (i.issue_date, i.number))
    return tuple(Deduction(i.id, i.number, i.issue_date, i.net_total,
                           tuple(replace(v, note=None) for v in i.vat_breakdown), i.gross_total)
                 for i in taken if i.number is not None and i.issue_date is not None)


def prepaid(invoice: Invoice, order_invoices: list[Invoice]) -> Decimal:
    """What a final invoice deducts in all (BT-113): the gross of its deductions."""
    return sum((d.gross_amount for d in deductions(invoice, order_invoices)), ZERO)


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
    paid = _next(invoice, payments=(*invoice.payments, Payment(payment_id, amount, received_on, by)))
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
    if invoice.cancelled_by != cancellation.id or cancellation.status != "cancellation":
        raise ValueError(f"invoice {invoice.id} is not cancelled by an issued {cancellation.id}")
    return _next(invoice, status="cancelled", refund_due=round_money(invoice.paid_total, invoice.currency))


# -- what comes from the order ------------------------------------------------------------

DEFAULT_VAT = {"category": "S", "rate": "19"}


def draft_from_plan(plan: dict, order: dict, client: dict | None, *, invoice_id: uuid.UUID,
                    now: dt.datetime) -> Invoice:
    """The draft of one planned invoice of an order (the order and the client as the read
    models hold them, JSON). VAT as the order determined it (its first category; the standard
    rate when the order names none), the payment term of the order (14 days by default), the
    client's billing data when invoicing knows the client, else what the order carries."""
    vat = (order.get("vat") or [DEFAULT_VAT])[0]
    lines = tuple(Line(description=ln["description"], quantity=Decimal(ln["quantity"]), unit=ln["unit"],
                       unit_price=Decimal(ln["unit_price"]), net_amount=Decimal(ln["net_amount"]),
                       vat_category=vat["category"], vat_rate=Decimal(vat["rate"])) for ln in plan["lines"])
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
        exchange_rate_date=dt.date.fromisoformat(order["exchange_rate_date"]) if order.get("exchange_rate_date")
        else None,
        **_installment_terms(plan, order),
    )


def _installment_terms(plan: dict, order: dict) -> dict:
    """An installment or final invoice knows how many invoices the order's schedule has (its title:
    "n of N") and the order's total (a partial invoice states it)."""
    if plan["kind"] not in ("installment", "final"):
        return {}
    schedule = order.get("schedule") or []
    count = sum(1 for p in schedule if p.get("kind") in ("installment", "final")) or None
    if order.get("net_total") is None:
        return {"installments": count}
    net = Decimal(order["net_total"])
    tax = sum((Decimal(v["tax_amount"]) for v in order.get("vat") or []), ZERO)
    gross = Decimal(order["gross_total"]) if order.get("gross_total") is not None else net + tax
    return {"installments": count, "order_total": OrderTotal(net, gross - net, gross)}


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
