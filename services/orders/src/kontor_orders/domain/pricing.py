"""Price changes of a recurring order's lines, from a date onward. Pure.

Every regular line of a recurring order is time-based: each planned invoice bills it for its
period. Its unit price may change while the order is active, never retroactively:

- the change takes effect from the start of a billing period (`effective_from` is the first
  day of one of the order's planned periods), and that period and every later one bill the
  new price; earlier periods keep theirs;
- a period already invoiced (an invoice for it is issued, or its draft may exist: invoicing
  drafts a planned invoice `draft_lead_days` before its date) cannot change: an effective date
  inside or before it is refused with the reason (`Conflict`), as is a date in the past;
- the order's line carries the new price from then on (what later periods bill); what each
  period bills stays in its planned invoice.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, replace
from decimal import Decimal

from kontor import lifecycle
from kontor.errors import Conflict, InvalidInput
from kontor.inputs import MAX_AMOUNT, check_currency_decimals
from kontor.money import round_money
from kontor_orders.domain.model import Order, amount_errors
from kontor_orders.domain.schedule import Line, PlannedInvoice


@dataclass(frozen=True)
class PriceChange:
    line: int  # the index of the order's line
    description: str
    unit_price_before: Decimal
    unit_price: Decimal
    effective_from: dt.date
    replanned: tuple[int, ...]  # the seqs of the planned invoices that bill the new price


def invoiced_seqs(schedule: tuple[PlannedInvoice, ...], *, issued: int, today: dt.date,
                  draft_lead_days: int = 0) -> frozenset[int]:
    """The planned invoices that may be invoiced already: the first `issued` ones (invoices are issued in the
    order of their dates) and every one whose draft may exist (its date is at most `draft_lead_days` away)."""
    ordered = sorted(schedule, key=lambda p: (p.invoice_date, p.seq))
    drafted_until = today + dt.timedelta(days=draft_lead_days)
    return frozenset(p.seq for i, p in enumerate(ordered) if i < issued or p.invoice_date <= drafted_until)


def _check_price(unit_price: Decimal, currency: str) -> Decimal:
    if not unit_price.is_finite() or unit_price <= 0:
        raise InvalidInput(field="unit_price", message="must be greater than 0")
    if unit_price > MAX_AMOUNT:
        raise InvalidInput(field="unit_price", message=f"must be at most {MAX_AMOUNT}")
    try:
        check_currency_decimals(unit_price, currency, "unit_price")
    except ValueError as exc:
        raise InvalidInput(field="unit_price", message=str(exc).removeprefix("unit_price: ")) from exc
    return unit_price


def change_price(*, lines: tuple[Line, ...], schedule: tuple[PlannedInvoice, ...], currency: str, line: int,
                 unit_price: Decimal, effective_from: dt.date, issued: int, today: dt.date,
                 draft_lead_days: int = 0) -> tuple[tuple[Line, ...], tuple[PlannedInvoice, ...], PriceChange]:
    """The order's lines and planned invoices with line `line` at `unit_price` from `effective_from` on, and the
    change for the history and the event. `issued`: how many invoices of the order are issued (cancelled ones
    included: what they billed was invoiced). The caller checks that the order is an active recurring one."""
    if not 0 <= line < len(lines):
        raise InvalidInput(field="line", message=f"no line {line}: the order has lines 0 to {len(lines) - 1}")
    target = lines[line]
    if target.kind != "regular":
        raise InvalidInput(field="line", message=f"line {line} is {target.kind}: it is never billed")
    price = _check_price(unit_price, currency)
    if price == target.unit_price:
        raise InvalidInput(field="unit_price", message=f"line {line} costs {price} {currency} already")
    periods = sorted((p for p in schedule if p.period_start is not None), key=lambda p: p.seq)
    invoiced = invoiced_seqs(schedule, issued=issued, today=today, draft_lead_days=draft_lead_days)
    for p in periods:
        start = p.period_start
        end = p.period_end or start
        if p.seq in invoiced and start is not None and end is not None and effective_from <= end:
            raise Conflict(f"the period {start.isoformat()} – {end.isoformat()} is invoiced already (planned invoice "
                           f"{p.seq} of {p.invoice_date.isoformat()} is issued or drafted): its price cannot change; "
                           "a change can take effect from the start of a period not yet invoiced")
    if effective_from < today:
        raise Conflict(f"a price change applies from a date onward, never retroactively: {effective_from.isoformat()}"
                       f" is in the past (today is {today.isoformat()})")
    starts = [p.period_start for p in periods if p.period_start is not None and p.period_start >= effective_from]
    if not starts:
        raise InvalidInput(field="effective_from", message="no billing period of the order starts on or after "
                                                           f"{effective_from.isoformat()}")
    if effective_from not in {p.period_start for p in periods}:
        raise InvalidInput(field="effective_from", message=(
            f"must be the first day of a billing period, e.g. {starts[0].isoformat()}: the price applies to whole "
            "periods"))
    # the planned invoices list the regular lines in the order's order: the changed line's place among them
    position = sum(1 for earlier in lines[:line] if earlier.kind == "regular")
    changed = replace(target, unit_price=price, net_amount=round_money(target.quantity * price, currency))
    replanned, new_schedule = [], []
    for p in schedule:
        if p.period_start is not None and p.period_start >= effective_from and position < len(p.lines):
            billed = tuple(changed if k == position else x for k, x in enumerate(p.lines))
            new_schedule.append(replace(p, lines=billed, net_amount=sum((x.net_amount for x in billed), Decimal(0))))
            replanned.append(p.seq)
        else:
            new_schedule.append(p)
    new_lines = tuple(changed if k == line else x for k, x in enumerate(lines))
    return new_lines, tuple(new_schedule), PriceChange(line, target.description, target.unit_price, price,
                                                       effective_from, tuple(replanned))


def change_order_price(order: Order, *, line: int, unit_price: Decimal, effective_from: dt.date,
                       today: dt.date, draft_lead_days: int = 0) -> tuple[Order, PriceChange]:
    """The active recurring order with the price of `line` changed from `effective_from` on (see the module)."""
    if order.status != "active":
        raise Conflict(f"prices change only on an active order, this one is {order.status}",
                       current_status=order.status)
    if order.payment is None or order.payment.mode != "recurring":
        raise Conflict("prices change from a date onward only on a recurring order; this one is billed "
                       f"{order.payment.mode if order.payment else 'without payment terms'}",
                       current_status=order.status)
    lines, schedule, change = change_price(lines=order.lines, schedule=order.schedule, currency=order.currency,
                                           line=line, unit_price=unit_price, effective_from=effective_from,
                                           issued=len(order.issued_invoices), today=today,
                                           draft_lead_days=draft_lead_days)
    after = lifecycle.next_version(order, lines=lines, schedule=schedule)
    if errors := amount_errors(after):  # every invoice of it must stay an amount that can be billed
        raise InvalidInput([("unit_price", message) for _, message in errors])
    return after, change
