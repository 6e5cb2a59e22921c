"""The three order values over time and the future-revenue report, in the pure domain (issue 22)."""
import datetime as dt
import uuid
from decimal import Decimal

import pytest

from kontor.errors import InvalidInput
from kontor_orders.domain import model, values
from kontor_orders.domain.schedule import Installment, PaymentTerms

pytestmark = pytest.mark.unit
NOW = dt.datetime(2026, 11, 2, 9, tzinfo=dt.UTC)
TODAY = dt.date(2026, 11, 2)
D = Decimal
CLIENT = model.ClientRef(uuid.uuid4(), "ACME", "company", "DE136695976", "DE", "de", "ok")


def line(price: str, qty: str = "1", unit: str = "lump_sum", kind: str | None = None) -> dict:
    raw = {"description": f"Work {price}", "quantity": qty, "unit": unit, "unit_price": price}
    return raw | ({"kind": kind} if kind else {})


def order(lines: list[dict], payment: PaymentTerms, *, start: dt.date, end: dt.date, currency: str = "EUR",
          activate: bool = True) -> model.Order:
    fields = {
        "contact_person": {"name": "Erika", "email": "erika@acme.example"}, "currency": currency, "lines": lines,
        "sector": "design", "place_of_service": "DE", "project_name": "Relaunch", "description": "Website",
        "service_start": start, "service_end": end, "payment": payment,
        "confirmation": model.Confirmation("skip", skip_reason="framework contract", separate_agreement=True),
    }
    o = model.build_draft(order_id=uuid.uuid4(), member_id="m1", client=CLIENT, client_id=CLIENT.id, fields=fields,
                          now=NOW)
    if not activate:
        return o
    o = model.submit(o, today=TODAY, exchange_rate_eur=D(1), rejection=None, flags=())
    return model.approve(o, today=TODAY)


def one_off() -> model.Order:
    """2 days at 640.00 and a lump sum of 300.00; an optional 500.00 and an alternative 900.00 line."""
    return order([line("640.00", "2", "day"), line("500.00", kind="optional"), line("300.00"),
                  line("900.00", kind="alternative")],
                 PaymentTerms("installments", 14, installments=(Installment(dt.date(2026, 12, 15), D("500.00")),
                                                                Installment(dt.date(2027, 1, 31), D("1080.00")))),
                 start=dt.date(2026, 12, 1), end=dt.date(2027, 1, 31))


def monthly() -> model.Order:
    """450.00 a month (and an optional 200.00 a month) from 30 November 2026 to 30 April 2027."""
    return order([line("450.00", unit="month"), line("200.00", unit="month", kind="optional")],
                 PaymentTerms("recurring", 14, interval="month", first_invoice_date=dt.date(2026, 11, 30)),
                 start=dt.date(2026, 11, 15), end=dt.date(2027, 4, 30))


def test_a_one_off_order_net_and_plan_value_leave_optional_lines_out_its_order_value_grows_with_invoices():
    o = one_off()
    assert o.status == "active"
    assert values.net_value(o) == D("1580.00")
    assert [line.kind for line in o.lines] == ["regular", "optional", "regular", "alternative"]
    # never invoiced: neither in the installment's amount nor in the final invoice's lines
    assert [p.net_amount for p in o.schedule] == [D("500.00"), D("1080.00")]
    assert [line.net_amount for line in o.schedule[-1].lines] == [D("1280.00"), D("300.00")]
    for day in (dt.date(2026, 11, 1), dt.date(2026, 12, 31), dt.date(2030, 1, 1)):
        assert values.plan_value(o, today=day) == D("1580.00")
    assert values.order_value(o) == D(0)
    o = model.record_issued_invoice(o, uuid.uuid4(), "2026-000001", D("500.00"))
    assert o is not None and values.order_value(o) == D("500.00")
    o = model.record_issued_invoice(o, uuid.uuid4(), "2027-000001", D("1080.00"))
    assert o is not None and values.values(o, today=dt.date(2027, 2, 1)) == {
        "net_value": D("1580.00"), "plan_value": D("1580.00"), "order_value": D("1580.00")}


@pytest.mark.parametrize("day, periods, plan", [
    (dt.date(2026, 11, 29), 0, "0"),  # before the first invoice date
    (dt.date(2026, 11, 30), 1, "450.00"),
    (dt.date(2026, 12, 29), 1, "450.00"),
    (dt.date(2026, 12, 30), 2, "900.00"),  # the 30th of each month
    (dt.date(2027, 1, 29), 2, "900.00"),  # across the year end
    (dt.date(2027, 1, 30), 3, "1350.00"),
    (dt.date(2027, 2, 27), 3, "1350.00"),
    (dt.date(2027, 2, 28), 4, "1800.00"),  # February has no 30th: its last day
    (dt.date(2027, 4, 30), 6, "2700.00"),
    (dt.date(2028, 1, 1), 6, "2700.00"),  # after the service period: the whole plan
])
def test_a_recurring_orders_plan_value_is_the_monthly_price_times_the_periods_begun(day, periods, plan):
    o = monthly()
    assert values.net_value(o) == D("450.00")
    assert values.elapsed_periods(o, today=day) == periods
    assert values.plan_value(o, today=day) == D(plan)
    assert [p.invoice_date for p in o.schedule] == [
        dt.date(2026, 11, 30), dt.date(2026, 12, 30), dt.date(2027, 1, 30), dt.date(2027, 2, 28),
        dt.date(2027, 3, 30), dt.date(2027, 4, 30)]


def test_a_recurring_orders_order_value_is_what_was_invoiced():
    o = monthly()
    for number in ("2026-000001", "2026-000002"):
        recorded = model.record_issued_invoice(o, uuid.uuid4(), number, D("450.00"))
        assert recorded is not None
        o = recorded
    assert values.values(o, today=dt.date(2027, 1, 30)) == {
        "net_value": D("450.00"), "plan_value": D("1350.00"), "order_value": D("900.00")}
    # recorded before amounts were kept: counts 0, not an error
    old = model.record_issued_invoice(o, uuid.uuid4(), "2027-000001")
    assert old is not None and values.order_value(old) == D("900.00")
    # a cancelled invoice leaves the order value; cancelling it again, or an unknown one, changes nothing
    first = o.issued_invoices[0].invoice_id
    cancelled = model.record_cancelled_invoice(o, first)
    assert cancelled is not None and values.order_value(cancelled) == D("450.00")
    assert [i.cancelled for i in cancelled.issued_invoices] == [True, False]
    assert model.record_cancelled_invoice(cancelled, first) is None
    assert model.record_cancelled_invoice(cancelled, uuid.uuid4()) is None


def test_sums_per_currency():
    usd = order([line("100.00")], PaymentTerms("after_completion", 14, invoice_date=dt.date(2027, 1, 31)),
                start=dt.date(2027, 1, 1), end=dt.date(2027, 1, 31), currency="USD")
    assert values.sums([one_off(), monthly(), usd], today=dt.date(2026, 12, 30)) == {
        "net_value": {"EUR": D("2030.00"), "USD": D("100.00")},
        "plan_value": {"EUR": D("2480.00"), "USD": D("100.00")},
        "order_value": {"EUR": D(0), "USD": D(0)},
    }


def test_future_revenue_by_month_and_currency_across_the_year_end():
    usd = order([line("100.00")], PaymentTerms("after_completion", 14, invoice_date=dt.date(2027, 1, 31)),
                start=dt.date(2027, 1, 1), end=dt.date(2027, 1, 31), currency="USD")
    draft = order([line("999.00")], PaymentTerms("after_completion", 14, invoice_date=dt.date(2027, 1, 31)),
                  start=dt.date(2027, 1, 1), end=dt.date(2027, 1, 31), activate=False)
    cancelled = model.decide_cancellation(model.request_cancellation(monthly(), "withdrawn"), approve=True)
    rows = values.future_revenue([one_off(), monthly(), usd, draft, cancelled],
                                 start=dt.date(2026, 12, 1), end=dt.date(2027, 2, 28))
    assert [(r.month, r.currency, r.net_amount, r.invoices) for r in rows] == [
        ("2026-12", "EUR", D("950.00"), 2),  # the installment 500.00 and December's 450.00
        ("2027-01", "EUR", D("1530.00"), 2),  # the final invoice 1080.00 (after its deduction) and 450.00
        ("2027-01", "USD", D("100.00"), 1),
        ("2027-02", "EUR", D("450.00"), 1),  # 28 February, the last day included
    ]
    assert values.future_revenue([monthly()], start=dt.date(2026, 12, 31), end=dt.date(2027, 1, 29)) == ()


def test_line_kinds_are_checked_and_an_order_needs_a_regular_line():
    with pytest.raises(InvalidInput) as e:
        order([line("100.00", kind="maybe")], PaymentTerms("advance"), start=dt.date(2027, 1, 1),
              end=dt.date(2027, 1, 31), activate=False)
    assert [f for f, _ in e.value.errors] == ["lines.0.kind"]
    with pytest.raises(InvalidInput) as e:
        order([line("100.00", kind="optional")], PaymentTerms("advance"), start=dt.date(2027, 1, 1),
              end=dt.date(2027, 1, 31), activate=False)
    assert [f for f, _ in e.value.errors] == ["lines"]
