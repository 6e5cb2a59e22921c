"""The contract of a recurring order and tidying up long-running orders. Pure.

A recurring order (payment mode `recurring`) runs under a contract:

- **one-off** (the default, `Order.contract` None): it ends with its service period
  (`finished` once the period is over);
- **automatic renewal**: at the end of each term the service period is extended by the term's
  length (`term_months`) unless the contract was cancelled on or before the **notice deadline**,
  `notice_months` before the term ends. The order run for a day (`as_of`) renews every term whose
  deadline lies before that day and reminds the member once per term, `reminder_days` before the
  deadline; both are idempotent (the term's end is recorded);
- **paused** from a day (until a day, or open-ended): no invoices are planned for the billing
  periods that begin while paused; resuming from a day plans them again from that day on;
- **cancelled**: no further renewal, the order ends with the current term;
- **finished**: a one-off contract whose service period is over.

Dates across month ends follow §§ 187, 188 BGB: a term of n months from the 31 Jan ends on the
last day of the month n months on when that month has no 31st (31 Jan + 1 month ends 28/29 Feb),
otherwise the day before the same day (1 Mar + 1 month ends 31 Mar); the notice deadline of a term
ending on the last day of a month is the last day of the month `notice_months` before (30 Jun,
3 months: 31 Mar), otherwise the same day `notice_months` before (clamped: 30 Mar, 1 month: 28 Feb).

Tidying up: a regular line is **fully invoiced** when every invoice of the order is issued, or when
an earlier installment billing it by line items is issued (the final invoice only deducts it).
Tidying up moves such lines to the order's archive (`Order.archived_lines`, indexes of its lines):
they stay in the order, so its net, plan and order value do not change, but are no longer open.
"""
from __future__ import annotations

import calendar
import datetime as dt
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import TYPE_CHECKING

from kontor.clock import add_months
from kontor.errors import Conflict, InvalidInput
from kontor_orders.domain.schedule import INTERVALS, PlannedInvoice, billable

if TYPE_CHECKING:
    from kontor_orders.domain.model import Order

KINDS = ("one_off", "auto_renew")
STATES = ("running", "paused", "finished", "cancelled")
ACTIONS = ("auto_renew", "pause", "resume", "cancel")
MAX_TERM_MONTHS = 120
MAX_NOTICE_MONTHS = 24


@dataclass(frozen=True)
class Pause:
    start: dt.date
    end: dt.date | None = None  # the last paused day; None: until resumed

    def covers(self, day: dt.date) -> bool:
        return self.start <= day and (self.end is None or day <= self.end)


@dataclass(frozen=True)
class Contract:
    kind: str = "one_off"
    state: str = "running"
    term_months: int | None = None  # auto_renew: the length of each renewed term
    notice_months: int = 0  # auto_renew: cancel at least this long before the term ends
    anchor: dt.date | None = None  # auto_renew: the first renewed term's first day
    renewals: int = 0  # terms renewed so far
    reminded_for: dt.date | None = None  # the term end the member was last reminded of
    pauses: tuple[Pause, ...] = ()
    cancelled_on: dt.date | None = None
    last_seq: int = 0  # the highest seq ever planned: a period planned again never reuses a dropped seq


ONE_OFF = Contract()


def contract_of(order: Order) -> Contract:
    return order.contract or ONE_OFF


# -- dates ------------------------------------------------------------------------------------

def _last_day(year: int, month: int) -> int:
    return calendar.monthrange(year, month)[1]


def term_end(start: dt.date, months: int) -> dt.date:
    """The last day of a term of `months` months beginning on `start` (§ 188 (2), (3) BGB)."""
    years, month0 = divmod(start.month - 1 + months, 12)
    year, month = start.year + years, month0 + 1
    if start.day > _last_day(year, month):
        return dt.date(year, month, _last_day(year, month))
    return dt.date(year, month, start.day) - dt.timedelta(days=1)


def notice_deadline(end: dt.date, notice_months: int) -> dt.date:
    """The last day a cancellation must arrive for the term ending on `end`."""
    if notice_months == 0:
        return end
    if end.day == _last_day(end.year, end.month):
        before = add_months(end.replace(day=1), -notice_months)
        return before.replace(day=_last_day(before.year, before.month))
    return add_months(end, -notice_months)


def current_deadline(order: Order) -> dt.date | None:
    c = contract_of(order)
    if c.kind != "auto_renew" or order.service_end is None:
        return None
    return notice_deadline(order.service_end, c.notice_months)


def next_term_end(c: Contract) -> dt.date:
    if c.anchor is None or c.term_months is None:
        raise InvalidInput(field="term_months", message="an automatic renewal needs the term's length")
    return term_end(c.anchor, c.term_months * (c.renewals + 1))


# -- billing periods ------------------------------------------------------------------------------

def _periods(order: Order, *, until: dt.date) -> list[tuple[dt.date, dt.date]]:
    """The recurring billing periods (start, end) from the first invoice date to `until`."""
    p = order.payment
    if p is None or p.interval not in INTERVALS or p.first_invoice_date is None:
        return []
    step, k, found = INTERVALS[p.interval], 0, []
    while (start := add_months(p.first_invoice_date, step * k)) <= until:
        found.append((start, min(until, add_months(p.first_invoice_date, step * (k + 1)) - dt.timedelta(days=1))))
        k += 1
    return found


def _planned(order: Order, periods: list[tuple[dt.date, dt.date]], first_seq: int) -> tuple[PlannedInvoice, ...]:
    """Planned invoices for `periods` at the order's current lines (a changed price included)."""
    p = order.payment
    if p is None:
        return ()
    lines = billable(order.lines)
    total = sum((line.net_amount for line in lines), Decimal(0))
    return tuple(PlannedInvoice(first_seq + i, "recurring", start, start + dt.timedelta(days=p.due_in_days), lines,
                                total, period_start=start, period_end=end)
                 for i, (start, end) in enumerate(periods))


def _next_seq(order: Order) -> int:
    return max(max((s.seq for s in order.schedule), default=0), contract_of(order).last_seq) + 1


def _paused(c: Contract, day: dt.date) -> bool:
    return any(pause.covers(day) for pause in c.pauses)


def invoiced(order: Order, *, today: dt.date, draft_lead_days: int) -> frozenset[int]:
    """The seqs of planned invoices that may be invoiced already (issued, or drafted by invoicing)."""
    from kontor_orders.domain.pricing import invoiced_seqs  # pricing imports the model, which imports this module
    return invoiced_seqs(order.schedule, issued=len(order.issued_invoices), today=today,
                         draft_lead_days=draft_lead_days)


# -- transitions ------------------------------------------------------------------------------------

def _require_recurring(order: Order, action: str) -> Contract:
    if order.status != "active":
        raise Conflict(f"cannot {action.replace('_', ' ')} the contract of an order in status {order.status} "
                       "(only active orders)", current_status=order.status)
    if order.payment is None or order.payment.mode != "recurring":
        raise Conflict(f"cannot {action.replace('_', ' ')}: only recurring orders have a contract to change "
                       f"(this one is paid {order.payment.mode if order.payment else 'without terms'})",
                       current_status=order.status)
    return contract_of(order)


def _bump(order: Order, **changes) -> Order:
    return replace(order, version=order.version + 1, **changes)


def start_auto_renewal(order: Order, *, term_months: int | None, notice_months: int | None,
                       today: dt.date) -> Order:
    """The contract renews automatically at the end of the service period, by `term_months` each time."""
    c = _require_recurring(order, "auto_renew")
    errors = []
    if term_months is None or not 1 <= term_months <= MAX_TERM_MONTHS:
        errors.append(("term_months", f"the term's length in months, 1 to {MAX_TERM_MONTHS}"))
    if notice_months is None or not 0 <= notice_months <= MAX_NOTICE_MONTHS:
        errors.append(("notice_months", f"the notice period in months, 0 to {MAX_NOTICE_MONTHS}"))
    if errors:
        raise InvalidInput(errors)
    if c.kind == "auto_renew":
        raise Conflict("the contract renews automatically already", current_status=order.status)
    if c.state != "running":
        raise Conflict(f"the contract is {c.state}", current_status=order.status)
    end = order.service_end
    if end is None or end < today:
        raise Conflict(f"the service period ended on {end}", current_status=order.status)
    return _bump(order, contract=replace(c, kind="auto_renew", term_months=term_months,
                                         notice_months=notice_months or 0, anchor=end + dt.timedelta(days=1)))


def cancel(order: Order, *, today: dt.date) -> Order:
    """No further renewal: the order ends with its current term. Refused after the notice deadline."""
    c = _require_recurring(order, "cancel")
    if c.kind != "auto_renew":
        raise Conflict(f"a one-off contract ends with its service period on {order.service_end}; to end it earlier, "
                       "request the order's cancellation", current_status=order.status)
    if c.state == "cancelled":
        raise Conflict(f"the contract was cancelled on {c.cancelled_on} already", current_status=order.status)
    deadline = current_deadline(order)
    if deadline is not None and today > deadline:
        raise Conflict(f"the notice deadline for the term ending {order.service_end} was {deadline}: the term renews "
                       f"until {next_term_end(c)}; cancel again after the renewal", current_status=order.status)
    return _bump(order, contract=replace(c, state="cancelled", cancelled_on=today))


def pause(order: Order, *, start: dt.date | None, end: dt.date | None, today: dt.date,
          draft_lead_days: int = 0) -> tuple[Order, tuple[int, ...]]:
    """Paused from `start` (until `end`, or until resumed): the planned invoices of the periods beginning then are
    dropped. Returns the order and the seqs dropped. A period that may be invoiced already cannot be paused."""
    c = _require_recurring(order, "pause")
    if start is None:
        raise InvalidInput(field="from", message="the first paused day is required")
    if start < today:
        raise InvalidInput(field="from", message=f"must not be in the past (today is {today})")
    if end is not None and end < start:
        raise InvalidInput(field="until", message="the pause ends before it starts")
    if c.state != "running":
        raise Conflict(f"the contract is {c.state}: only a running contract can be paused", current_status=order.status)
    if order.service_end is not None and start > order.service_end:
        raise InvalidInput(field="from", message=f"after the end of the service period ({order.service_end})")
    pause_ = Pause(start, end)
    dropped = tuple(s.seq for s in order.schedule if s.period_start is not None and pause_.covers(s.period_start))
    done = invoiced(order, today=today, draft_lead_days=draft_lead_days)
    if blocked := sorted(set(dropped) & done):
        raise Conflict(f"the planned invoices {', '.join(map(str, blocked))} may be invoiced already: pause from a "
                       "later period", current_status=order.status)
    schedule = tuple(s for s in order.schedule if s.seq not in dropped)
    last_seq = _next_seq(order) - 1
    return _bump(order, schedule=schedule, contract=replace(c, state="paused", pauses=(*c.pauses, pause_),
                                                          last_seq=last_seq)), dropped


def resume(order: Order, *, start: dt.date | None, today: dt.date) -> tuple[Order, tuple[int, ...]]:
    """Billed again from `start`: the periods beginning on or after it that the pause left out are planned
    (at the order's current prices). Returns the order and the seqs planned."""
    c = _require_recurring(order, "resume")
    if c.state != "paused" or not c.pauses:
        raise Conflict(f"the contract is {c.state}: only a paused contract can be resumed", current_status=order.status)
    start = start or today
    last = c.pauses[-1]
    if start < today:
        raise InvalidInput(field="from", message=f"must not be in the past (today is {today})")
    if start <= last.start:
        raise InvalidInput(field="from", message=f"the pause begins on {last.start}: resume after it")
    until = order.service_end or start
    end = min(last.end, until) if last.end is not None else until
    planned_starts = {s.period_start for s in order.schedule}
    periods = [(a, b) for a, b in _periods(order, until=until)
               if start <= a <= end and a not in planned_starts and not _paused(replace(c, pauses=c.pauses[:-1]), a)]
    added = _planned(order, periods, _next_seq(order))
    schedule = tuple(sorted((*order.schedule, *added), key=lambda s: (s.invoice_date, s.seq)))
    pauses = (*c.pauses[:-1], Pause(last.start, start - dt.timedelta(days=1)))
    return (_bump(order, schedule=schedule, contract=replace(c, state="running", pauses=pauses)),
            tuple(s.seq for s in added))


def pause_over(order: Order, *, as_of: dt.date) -> bool:
    """A pause with an end that `as_of` is past: the run resumes the contract."""
    c = contract_of(order)
    return c.state == "paused" and bool(c.pauses) and c.pauses[-1].end is not None and c.pauses[-1].end < as_of


def end_pause(order: Order) -> Order:
    """The pause's end has passed: running again (the periods after it were never dropped)."""
    return _bump(order, contract=replace(contract_of(order), state="running"))


def renewal_due(order: Order, *, as_of: dt.date) -> bool:
    c = contract_of(order)
    deadline = current_deadline(order)
    return (order.status == "active" and c.state in ("running", "paused") and deadline is not None
            and as_of > deadline)


def renew(order: Order) -> tuple[Order, tuple[int, ...]]:
    """The next term: the service period extended to its end and its periods planned (none while paused
    open-ended). Returns the order and the seqs planned. The caller checks `renewal_due`."""
    c = contract_of(order)
    old_end = order.service_end
    if old_end is None:
        raise InvalidInput(field="service_period", message="is required to renew the order")
    new_end = next_term_end(c)
    renewed = replace(order, service_end=new_end)
    # the period running at the old end continues to its natural end
    schedule = tuple(replace(s, period_end=min(new_end, _natural_end(renewed, s.period_start)))
                     if s.period_end == old_end and s.period_start is not None else s for s in order.schedule)
    periods = [(a, b) for a, b in _periods(renewed, until=new_end) if old_end < a and not _paused(c, a)]
    added = _planned(renewed, periods, _next_seq(order))
    after = _bump(renewed, schedule=(*schedule, *added),
                  contract=replace(c, renewals=c.renewals + 1, reminded_for=None))
    return after, tuple(s.seq for s in added)


def _natural_end(order: Order, start: dt.date) -> dt.date:
    for a, b in _periods(order, until=order.service_end or start):
        if a == start:
            return b
    return start


def reminder_due(order: Order, *, as_of: dt.date, reminder_days: int) -> dt.date | None:
    """The notice deadline the member should now be reminded of (once per term), or None."""
    c = contract_of(order)
    deadline = current_deadline(order)
    if (order.status != "active" or c.state not in ("running", "paused") or deadline is None
            or c.reminded_for == order.service_end):
        return None
    return deadline if deadline - dt.timedelta(days=reminder_days) <= as_of <= deadline else None


def remind(order: Order) -> Order:
    return _bump(order, contract=replace(contract_of(order), reminded_for=order.service_end))


def finish_due(order: Order, *, as_of: dt.date) -> bool:
    c = contract_of(order)
    return (order.payment is not None and order.payment.mode == "recurring" and c.kind == "one_off"
            and c.state == "running" and order.service_end is not None and order.service_end < as_of
            and order.status in ("active", "completed"))


def finish(order: Order) -> Order:
    return _bump(order, contract=replace(contract_of(order), state="finished"))


# -- tidy up ----------------------------------------------------------------------------------------

def fully_invoiced_lines(order: Order) -> tuple[int, ...]:
    """The indexes of the regular lines whose amount is invoiced (see the module)."""
    issued = sum(1 for i in order.issued_invoices if not i.cancelled)
    ordered = sorted(order.schedule, key=lambda p: (p.invoice_date, p.seq))
    regular = [i for i, line in enumerate(order.lines) if line.kind == "regular"]
    if ordered and issued >= len(ordered):
        return tuple(regular)
    done: set[int] = set()
    items = order.payment.installments if order.payment and order.payment.mode == "installments" else ()
    billed_dates = {p.invoice_date for p in ordered[:issued] if p.kind == "installment"}
    for item in items[:-1]:
        if item.lines and item.date in billed_dates:
            done.update(item.lines)
    return tuple(i for i in regular if i in done)


def tidy_up(order: Order) -> tuple[Order, tuple[int, ...]]:
    """The fully invoiced lines not archived yet move to the archive; returns the order and the lines moved."""
    if order.status not in ("active", "completed", "cancellation_requested"):
        raise Conflict(f"only running or completed orders are tidied up (this one is {order.status})",
                       current_status=order.status)
    moved = tuple(i for i in fully_invoiced_lines(order) if i not in order.archived_lines)
    if not moved:
        raise Conflict("no fully invoiced lines to archive: a line is archived once what it bills is invoiced",
                       current_status=order.status)
    return _bump(order, archived_lines=tuple(sorted((*order.archived_lines, *moved)))), moved
