"""What a client owes the cooperative, and the debt rule. No I/O.

The ledger holds one receivable per issued invoice, fed by invoice events. Invoice
events carry cumulative figures (paid so far, open amount), so applying one sets the
state instead of adding to it: a duplicate or replayed event changes nothing.

The debt rule (DESIGN.md §4, seeds: "invoices due for more than 2 months"): a client
with an open invoice more than two months past its due date is restricted to advance
payment. When no such invoice is left, a restriction the rule set is lifted; one an
advisor set stays. An advisor who lifts the rule's restriction while the debt is still
there is respected for the invoices that had already crossed the line at that moment;
an invoice crossing it later restricts the client again.

The date the rule judges as of: a standing run's date, for that run only; an invoice event
is judged as of today by the clients service's clock, whatever date an earlier run was "as
of": a run as of a later date (a demo playing a year through) must not make every later
event look two months overdue.
"""
from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, replace
from decimal import Decimal

from kontor.clock import BERLIN, add_months
from kontor.money import round_money
from kontor_clients.domain.model import Client, Standing

GRACE_MONTHS = 2
ZERO = Decimal(0)


@dataclass(frozen=True)
class Receivable:
    invoice_id: uuid.UUID
    client_id: uuid.UUID
    number: str
    currency: str
    amount_due: Decimal
    issue_date: dt.date
    due_date: dt.date
    paid_total: Decimal = ZERO
    status: str = "open"  # open | paid | cancelled
    refund_due: Decimal = ZERO

    @property
    def open_amount(self) -> Decimal:
        return max(self.amount_due - self.paid_total, ZERO) if self.status == "open" else ZERO

    @property
    def overpaid_amount(self) -> Decimal:
        return max(self.paid_total - self.amount_due, ZERO)

    def is_overdue(self, as_of: dt.date) -> bool:
        return self.open_amount > 0 and as_of > self.due_date

    @property
    def restricts_after(self) -> dt.date:
        """The last day before the debt rule applies to this invoice (the calendar's last day
        when that would be beyond it: such an invoice never restricts)."""
        try:
            return add_months(self.due_date, GRACE_MONTHS)
        except (ValueError, OverflowError):  # a due date in the last two months of year 9999
            return dt.date.max

    def restricts(self, as_of: dt.date) -> bool:
        return self.open_amount > 0 and as_of > self.restricts_after


# -- applying invoice events -------------------------------------------------------------

def record_payment(r: Receivable, *, paid_total: Decimal) -> Receivable:
    # Cumulative: never go below what a later event already said was paid.
    return replace(r, paid_total=max(r.paid_total, paid_total))


def mark_paid(r: Receivable, *, paid_total: Decimal) -> Receivable:
    return replace(r, status="paid", paid_total=max(r.paid_total, paid_total))


def mark_cancelled(r: Receivable, *, refund_due: Decimal) -> Receivable:
    return replace(r, status="cancelled", refund_due=refund_due)


# -- the client's position -----------------------------------------------------------------

@dataclass(frozen=True)
class CurrencyPosition:
    currency: str
    open_amount: Decimal
    overdue_amount: Decimal
    open_invoices: int
    overdue_invoices: int
    oldest_overdue: Receivable | None
    overpaid_amount: Decimal
    refund_due: Decimal


def positions(receivables: Iterable[Receivable], as_of: dt.date) -> list[CurrencyPosition]:
    """Open and overdue amounts per currency, with the oldest overdue invoice."""
    by_currency: dict[str, list[Receivable]] = {}
    for r in receivables:
        by_currency.setdefault(r.currency, []).append(r)
    result = []
    for currency in sorted(by_currency):
        items = by_currency[currency]
        open_items = [r for r in items if r.open_amount > 0]
        overdue = sorted((r for r in open_items if r.is_overdue(as_of)), key=lambda r: (r.due_date, r.number))

        def total(amounts: Iterable[Decimal], currency: str = currency) -> Decimal:
            return round_money(sum(amounts, ZERO), currency)

        result.append(CurrencyPosition(
            currency=currency,
            open_amount=total(r.open_amount for r in open_items),
            overdue_amount=total(r.open_amount for r in overdue),
            open_invoices=len(open_items),
            overdue_invoices=len(overdue),
            oldest_overdue=overdue[0] if overdue else None,
            overpaid_amount=total(r.overpaid_amount for r in items),
            refund_due=total(r.refund_due for r in items),
        ))
    return result


def debt_rule_horizon(as_of: dt.date) -> dt.date:
    """Only open invoices due before this day can decide the debt rule as of `as_of`: one
    restricts only once it is more than GRACE_MONTHS past due, so never before it is overdue.
    The ledger reads just these for each invoice event, not every receivable of the client."""
    return as_of


def debt_rule(client: Client, receivables: Iterable[Receivable], *, as_of: dt.date,
              now: dt.datetime) -> Client | None:
    """The client with the standing the debt rule gives it as of `as_of`, or None if unchanged.
    `receivables` may be all of the client's or only the open ones due before `debt_rule_horizon`."""
    standing = client.standing
    receivables = list(receivables)
    restricting = sorted((r for r in receivables if r.restricts(as_of)), key=lambda r: (r.due_date, r.number))
    if standing.source == "advisor" and standing.since is not None:
        # The advisor decided after these invoices had crossed the line: respect that.
        decided_on = standing.since.astimezone(BERLIN).date()
        restricting = [r for r in restricting if r.restricts_after >= decided_on]
    if restricting and standing.status == "ok":
        oldest = restricting[0]
        reason = (f"{len(restricting)} invoice(s) more than {GRACE_MONTHS} months past due "
                  f"(oldest {oldest.number}, due {oldest.due_date.isoformat()})")
        new = Standing(status="advance_payment_only", reason=reason, source="debt_rule", since=now)
    elif not any(r.restricts(as_of) for r in receivables) and standing.source == "debt_rule" \
            and standing.status != "ok":
        new = Standing(status="ok", reason=f"debt cleared: no invoice more than {GRACE_MONTHS} months past due",
                       source="debt_rule", since=now)
    else:
        return None
    return replace(client, standing=new, version=client.version + 1)
