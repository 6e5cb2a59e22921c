"""The three values of an order and the future-revenue report. Pure: the day is given.

- **net value**: the sum of the order's regular lines (optional and alternative lines left
  out), i.e. `Order.net_total`;
- **plan value**: what the order is worth by its plan as of a day. A one-off order (every
  payment mode but `recurring`) is worth its net value from the start. A recurring order bills
  its net value once per period (month, quarter or year, see `schedule.compute_schedule`), so it
  is worth the net value × the periods *begun* by that day: the periods starting on
  `first_invoice_date + k × interval` (k = 0, 1, ...) on or before both the day and the end of
  the service period. Before its first invoice date it is worth 0; from the end of the service
  period on, its whole plan. A recurring draft without interval or first date is worth 0;
- **order value**: what was actually invoiced, net: the sum of the issued invoices the orders
  service learnt of (kontor.invoices.v1), a final invoice counted less the installments it
  deducts, so that each amount counts once; a cancelled invoice no longer counts.

Future revenue: the planned invoices of active orders whose invoice date lies in a range,
summed (net, what each invoice bills: a final invoice after its deduction) per month of
the invoice date and currency. An order that renews automatically (domain/contract.py) and is
not cancelled counts the invoices of the terms it will renew into as well (`from_renewals`):
planned as its renewal will plan them, at its current prices, none for an open-ended pause.
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

from kontor.clock import add_months
from kontor_orders.domain import contract
from kontor_orders.domain.model import Order
from kontor_orders.domain.schedule import INTERVALS

VALUES = ("net_value", "plan_value", "order_value")
ZERO = Decimal(0)


def net_value(order: Order) -> Decimal:
    return order.net_total


def elapsed_periods(order: Order, *, today: dt.date) -> int:
    """The billing periods of a recurring order begun on or before `today` (see the module)."""
    p = order.payment
    if p is None or p.mode != "recurring" or p.interval not in INTERVALS or p.first_invoice_date is None:
        return 0
    step = INTERVALS[p.interval]
    last = min(today, order.service_end) if order.service_end is not None else today
    if last < p.first_invoice_date:
        return 0
    # months between the first date and `last`, then corrected by the day of the month (add_months
    # clamps to a month's end, as the schedule does)
    months = (last.year - p.first_invoice_date.year) * 12 + last.month - p.first_invoice_date.month
    k = months // step + 1
    while k > 0 and add_months(p.first_invoice_date, step * (k - 1)) > last:
        k -= 1
    return k


def plan_value(order: Order, *, today: dt.date) -> Decimal:
    if order.payment is None or order.payment.mode != "recurring":
        return order.net_total
    if order.schedule:  # what its planned periods bill: a price changed from a date on counts from that period
        if order.contract is not None and order.contract.pauses:  # paused periods are not planned, nor worth anything
            return sum((p.net_amount for p in order.schedule if p.invoice_date <= today), ZERO)
        begun = sorted(order.schedule, key=lambda planned: planned.seq)[:elapsed_periods(order, today=today)]
        return sum((planned.net_amount for planned in begun), ZERO)
    return order.net_total * elapsed_periods(order, today=today)


def order_value(order: Order) -> Decimal:
    return sum((i.net_amount or ZERO for i in order.issued_invoices if not i.cancelled), ZERO)


def values(order: Order, *, today: dt.date) -> dict[str, Decimal]:
    return {"net_value": net_value(order), "plan_value": plan_value(order, today=today),
            "order_value": order_value(order)}


def sums(orders: Iterable[Order], *, today: dt.date) -> dict[str, dict[str, Decimal]]:
    """Each value summed per currency: {value: {currency: sum}}, currencies in alphabetical order."""
    totals: dict[str, dict[str, Decimal]] = {name: {} for name in VALUES}
    for order in orders:
        for name, amount in values(order, today=today).items():
            totals[name][order.currency] = totals[name].get(order.currency, ZERO) + amount
    return {name: dict(sorted(per.items())) for name, per in totals.items()}


@dataclass(frozen=True)
class RevenueRow:
    month: str  # YYYY-MM
    currency: str
    net_amount: Decimal
    invoices: int
    from_renewals: int = 0  # of the invoices, those of terms not renewed yet


def _with_renewals(order: Order, *, end: dt.date) -> tuple[Order, frozenset[int]]:
    """The order with the terms it renews into up to `end` planned, and the seqs those add."""
    projected: set[int] = set()
    c = contract.contract_of(order)
    while (c.kind == "auto_renew" and c.state in ("running", "paused") and order.service_end is not None
           and order.service_end < end):
        order, added = contract.renew(order)
        projected.update(added)
        c = contract.contract_of(order)
    return order, frozenset(projected)


def future_revenue(orders: Iterable[Order], *, start: dt.date, end: dt.date) -> tuple[RevenueRow, ...]:
    """The planned invoices of active orders dated `start`..`end` (both included), per month and
    currency, in order of month, then currency."""
    found: dict[tuple[str, str], tuple[Decimal, int, int]] = {}
    for order in orders:
        if order.status != "active":
            continue
        order, projected = _with_renewals(order, end=end)
        for planned in order.schedule:
            if start <= planned.invoice_date <= end:
                key = (f"{planned.invoice_date.year:04d}-{planned.invoice_date.month:02d}", order.currency)
                amount, count, renewing = found.get(key, (ZERO, 0, 0))
                found[key] = (amount + planned.net_amount, count + 1, renewing + (planned.seq in projected))
    return tuple(RevenueRow(month, currency, amount, count, renewing)
                 for (month, currency), (amount, count, renewing) in sorted(found.items()))
