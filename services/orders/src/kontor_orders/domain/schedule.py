"""Payment terms and the billing schedule an activated order publishes. Pure.

Modes (DESIGN.md §2):
- `after_completion`: one invoice on a date at or after the end of the service period;
- `installments`: one to three invoices, each with a date and an amount, a percentage or
  line items of the order (by their index: the invoice bills and lists those lines), that
  add up exactly to the order total; the last is the final invoice: it lists the whole
  order and deducts what the earlier ones billed, so the total is billed once;
- `recurring`: the order's amount every month, quarter or year from a first invoice date
  to the end of the service period;
- `advance`: the whole amount on activation, due before the service starts.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from typing import TypeVar

from kontor.clock import add_months
from kontor.errors import InvalidInput
from kontor.inputs import EARLIEST_DATE, LATEST_DATE, check_currency_decimals
from kontor.money import round_money

MODES = ("after_completion", "installments", "recurring", "advance")
INTERVALS = {"month": 1, "quarter": 3, "year": 12}
MAX_INSTALLMENTS = 3
MAX_DUE_IN_DAYS = 120
HUNDRED = Decimal(100)
T = TypeVar("T")


def date_error(name: str, day: dt.date | None) -> list[tuple[str, str]]:
    """A business date outside the range every derived date (due dates, the day before the
    service, the periods of recurring invoices, the end of a validity day) can be computed
    from: years near 1 or 9999 would overflow that arithmetic."""
    if day is not None and not EARLIEST_DATE <= day <= LATEST_DATE:
        return [(name, f"must be between {EARLIEST_DATE.isoformat()} and {LATEST_DATE.isoformat()}")]
    return []


def terms_date_errors(terms: PaymentTerms) -> list[tuple[str, str]]:
    errors = date_error("payment.invoice_date", terms.invoice_date)
    errors += date_error("payment.first_invoice_date", terms.first_invoice_date)
    for i, item in enumerate(terms.installments):
        errors += date_error(f"payment.installments.{i}.date", item.date)
    return errors


@dataclass(frozen=True)
class Installment:
    date: dt.date
    amount: Decimal | None = None
    percentage: Decimal | None = None
    lines: tuple[int, ...] = ()  # indexes of the order's lines this installment bills


@dataclass(frozen=True)
class PaymentTerms:
    mode: str
    due_in_days: int = 14
    invoice_date: dt.date | None = None  # after_completion
    installments: tuple[Installment, ...] = ()
    interval: str | None = None  # recurring
    first_invoice_date: dt.date | None = None  # recurring


@dataclass(frozen=True)
class Line:
    """A line item: of an order, and of each invoice planned from it."""

    description: str
    quantity: Decimal
    unit: str
    unit_price: Decimal
    net_amount: Decimal
    # regular: part of the order and billed; optional (offered, not ordered) and alternative (instead
    # of another line): shown with the order, never in its net value, its plan or an invoice
    kind: str = "regular"


LINE_KINDS = ("regular", "optional", "alternative")


def billable(lines: tuple[Line, ...]) -> tuple[Line, ...]:
    """The lines that are billed: the regular ones."""
    return tuple(line for line in lines if line.kind == "regular")


@dataclass(frozen=True)
class PlannedInvoice:
    seq: int
    kind: str  # advance | after_completion | installment | final | recurring
    invoice_date: dt.date
    due_date: dt.date
    lines: tuple[Line, ...]
    net_amount: Decimal  # what this invoice bills (for a final invoice: after the deduction)
    deducted: Decimal = Decimal(0)  # final invoice: the net of the earlier installments
    period_start: dt.date | None = None
    period_end: dt.date | None = None


def line_entry_errors(items: tuple[Installment, ...], lines: tuple[Line, ...]) -> list[tuple[str, str]]:
    """Installments that bill line items: each names lines the order has, regular ones (an optional or
    alternative line is never billed), and each line at most once across the plan."""
    errors: list[tuple[str, str]] = []
    billed_by: dict[int, int] = {}
    for i, item in enumerate(items):
        for k, index in enumerate(item.lines):
            field = f"payment.installments.{i}.lines.{k}"
            if not 0 <= index < len(lines):
                errors.append((field, f"no line {index}: the order has lines 0 to {len(lines) - 1}"))
            elif lines[index].kind != "regular":
                errors.append((field, f"line {index} is {lines[index].kind}: only regular lines are billed"))
            elif index in billed_by:
                errors.append((field, f"line {index} is billed by installment {billed_by[index]} already"))
            else:
                billed_by[index] = i
    return errors


def lines_amount(item: Installment, lines: tuple[Line, ...]) -> Decimal:
    """What an installment by line items bills: the net of its lines (valid references, see line_entry_errors)."""
    return sum((lines[index].net_amount for index in item.lines), Decimal(0))


def validate_terms(terms: PaymentTerms, *, total: Decimal, currency: str, service_start: dt.date,
                   service_end: dt.date, lines: tuple[Line, ...] | None = None) -> list[tuple[str, str]]:
    """Problems of the payment terms of a complete order, each with its field; `lines`: the order's lines
    (all of them: installments name them by index), without which an installment by line items is refused."""
    errors = date_error("service_period.start", service_start) + date_error("service_period.end", service_end)
    errors += terms_date_errors(terms)
    if errors:
        return errors
    if terms.mode not in MODES:
        return [("payment.mode", f"must be one of {', '.join(MODES)}")]
    if not 0 <= terms.due_in_days <= MAX_DUE_IN_DAYS:
        errors.append(("payment.due_in_days", f"must be between 0 and {MAX_DUE_IN_DAYS} days"))
    if terms.mode == "after_completion":
        if terms.invoice_date is None:
            errors.append(("payment.invoice_date", "is required for payment after completion"))
        elif terms.invoice_date < service_end:
            errors.append(("payment.invoice_date", "must be on or after the end of the service period"))
    elif terms.mode == "installments":
        items = terms.installments
        if not 1 <= len(items) <= MAX_INSTALLMENTS:
            errors.append(("payment.installments", f"1 to {MAX_INSTALLMENTS} installments"))
            return errors
        for i, item in enumerate(items):
            if (item.amount is not None) + (item.percentage is not None) + bool(item.lines) != 1:
                errors.append((f"payment.installments.{i}", "give either an amount, a percentage or line items"))
            if item.amount is not None:
                if not item.amount.is_finite() or item.amount <= 0:
                    errors.append((f"payment.installments.{i}.amount", f"a positive amount in {currency}"))
                else:
                    try:
                        check_currency_decimals(item.amount, currency, "amount")
                    except ValueError as exc:
                        errors.append((f"payment.installments.{i}.amount", str(exc).removeprefix("amount: ")))
            if item.percentage is not None and not 0 < item.percentage <= HUNDRED:
                errors.append((f"payment.installments.{i}.percentage", "between 0 and 100"))
            if i and item.date <= items[i - 1].date:
                errors.append((f"payment.installments.{i}.date", "installment dates must increase"))
        if any(item.lines for item in items):
            errors += line_entry_errors(items, lines) if lines is not None else \
                [("payment.installments", "line items can be billed only with the order's lines")]
        if errors:
            return errors
        amounts = [item.amount for item in items if item.amount is not None]
        percentages = [item.percentage for item in items if item.percentage is not None]
        if lines is not None and any(item.lines for item in items):
            if percentages:
                errors.append(("payment.installments", "installments by line items go with amounts, not percentages"))
            else:
                given = sum(amounts, Decimal(0)) + sum((lines_amount(item, lines) for item in items), Decimal(0))
                if given != total:
                    errors.append(("payment.installments", f"the amounts and line items add up to {given}, "
                                                           f"the order total is {total}"))
        elif len(amounts) == len(items):
            given = sum(amounts, Decimal(0))
            if given != total:
                errors.append(("payment.installments", f"the amounts add up to {given}, the order total is {total}"))
        elif len(percentages) == len(items):
            given = sum(percentages, Decimal(0))
            if given != HUNDRED:
                errors.append(("payment.installments", f"the percentages add up to {given}, not 100"))
        else:
            errors.append(("payment.installments", "use amounts for all installments or percentages for all"))
    elif terms.mode == "recurring":
        if terms.interval not in INTERVALS:
            errors.append(("payment.interval", f"must be one of {', '.join(INTERVALS)}"))
        if terms.first_invoice_date is None:
            errors.append(("payment.first_invoice_date", "is required for recurring payment"))
        elif not service_start <= terms.first_invoice_date <= service_end:
            errors.append(("payment.first_invoice_date", "must lie within the service period"))
    return errors


def _due(day: dt.date, terms: PaymentTerms) -> dt.date:
    return day + dt.timedelta(days=terms.due_in_days)


def _required(value: T | None, field: str) -> T:
    """A value of the terms that validate_terms requires for their mode."""
    if value is None:
        raise InvalidInput([(field, "is required")])
    return value


def installment_amounts(items: tuple[Installment, ...], *, total: Decimal, currency: str,
                        lines: tuple[Line, ...] = ()) -> tuple[Decimal, ...]:
    """The net amount each installment bills of `total`: an earlier one its amount, the net of its line items
    (of `lines`, the order's) or its share rounded to the currency, the last one the remainder (so the total is
    billed exactly once)."""
    amounts: list[Decimal] = []
    for i, item in enumerate(items[:-1]):
        if item.lines:
            amounts.append(lines_amount(item, lines))
        elif item.amount is not None:
            amounts.append(item.amount)
        else:
            percentage = _required(item.percentage, f"payment.installments.{i}.percentage")
            amounts.append(round_money(total * percentage / HUNDRED, currency))
    return (*amounts, total - sum(amounts, Decimal(0))) if items else ()


def compute_schedule(terms: PaymentTerms, lines: tuple[Line, ...], *, currency: str, service_start: dt.date,
                     service_end: dt.date, activated_on: dt.date,
                     label: str = "Installment") -> tuple[PlannedInvoice, ...]:
    """The planned invoices of an order activated on `activated_on`; `InvalidInput` (never an
    overflow) when the terms cannot be scheduled, e.g. an order stored before dates were bounded.
    Optional and alternative lines are never planned. An installment by line items lists its lines."""
    order_lines, lines = lines, billable(lines)
    total = sum((line.net_amount for line in lines), Decimal(0))
    errors = validate_terms(terms, total=total, currency=currency, service_start=service_start,
                            service_end=service_end, lines=order_lines) + date_error("activated_on", activated_on)
    if errors:
        raise InvalidInput(errors)
    if terms.mode == "advance":
        # due before the service starts (and never before the invoice itself)
        due = max(activated_on, min(_due(activated_on, terms), service_start - dt.timedelta(days=1)))
        return (PlannedInvoice(1, "advance", activated_on, due, lines, total, period_start=service_start,
                               period_end=service_end),)
    if terms.mode == "after_completion":
        day = max(_required(terms.invoice_date, "payment.invoice_date"), activated_on)
        return (PlannedInvoice(1, "after_completion", day, _due(day, terms), lines, total,
                               period_start=service_start, period_end=service_end),)
    if terms.mode == "recurring":
        step = INTERVALS[_required(terms.interval, "payment.interval")]
        first = _required(terms.first_invoice_date, "payment.first_invoice_date")
        dates, k = [], 0
        while (day := add_months(first, step * k)) <= service_end:
            dates.append(day)
            k += 1
        return tuple(
            PlannedInvoice(i + 1, "recurring", day, _due(day, terms), lines, total, period_start=day,
                           period_end=min(service_end, add_months(first, step * (i + 1))
                                          - dt.timedelta(days=1)))
            for i, day in enumerate(dates))
    # installments: the earlier ones are rounded, the final one takes the remainder
    items = terms.installments
    planned, billed = [], Decimal(0)
    for i, (item, amount) in enumerate(zip(items[:-1], installment_amounts(items, total=total, currency=currency,
                                                                           lines=order_lines), strict=False)):
        billed += amount
        billed_lines = tuple(order_lines[index] for index in item.lines) or (
            Line(f"{label} {i + 1}/{len(items)}", Decimal(1), "lump_sum", amount, amount),)
        planned.append(PlannedInvoice(i + 1, "installment", item.date, _due(item.date, terms), billed_lines, amount,
                                      period_start=service_start, period_end=service_end))
    last = items[-1]
    planned.append(PlannedInvoice(len(items), "final", last.date, _due(last.date, terms), lines, total - billed,
                                  deducted=billed, period_start=service_start, period_end=service_end))
    return tuple(planned)
