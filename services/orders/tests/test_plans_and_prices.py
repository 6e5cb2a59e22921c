"""Payment plans by line item and price changes from a date, in the pure domain (issue 22, items 1 and 5)."""
import datetime as dt
import uuid
from decimal import Decimal

import pytest

from kontor.errors import Conflict, InvalidInput
from kontor_orders.domain import model, pricing, values
from kontor_orders.domain.schedule import Installment, Line, PaymentTerms, compute_schedule, validate_terms

pytestmark = pytest.mark.unit
NOW = dt.datetime(2026, 11, 2, 9, tzinfo=dt.UTC)
TODAY = dt.date(2026, 11, 2)
D = Decimal
CLIENT = model.ClientRef(uuid.uuid4(), "ACME", "company", "DE136695976", "DE", "de", "ok")
START, END = dt.date(2027, 1, 1), dt.date(2027, 6, 30)

# concept 1200.00, design 2 days at 900.00, an optional 500.00 and an alternative 700.00, implementation 2400.00
LINES = (Line("Concept", D(1), "lump_sum", D("1200.00"), D("1200.00")),
         Line("Design", D(2), "day", D("900.00"), D("1800.00")),
         Line("Hosting", D(1), "lump_sum", D("500.00"), D("500.00"), kind="optional"),
         Line("Other design", D(1), "lump_sum", D("700.00"), D("700.00"), kind="alternative"),
         Line("Implementation", D(1), "lump_sum", D("2400.00"), D("2400.00")))
TOTAL = D("5400.00")


def errors_of(*items: Installment, lines=LINES) -> list[tuple[str, str]]:
    return validate_terms(PaymentTerms("installments", installments=items), total=TOTAL, currency="EUR",
                          service_start=START, service_end=END, lines=lines)


def plan(*items: Installment):
    return compute_schedule(PaymentTerms("installments", 14, installments=items), LINES, currency="EUR",
                            service_start=START, service_end=END, activated_on=TODAY)


def test_installments_by_line_items_list_those_lines_and_the_final_invoice_deducts_them():
    first, second, final = plan(Installment(dt.date(2027, 1, 31), lines=(0,)),
                                Installment(dt.date(2027, 3, 31), lines=(1,)),
                                Installment(dt.date(2027, 6, 30), lines=(4,)))
    assert (first.kind, [ln.description for ln in first.lines], first.net_amount) == (
        "installment", ["Concept"], D("1200.00"))
    assert (second.kind, [ln.description for ln in second.lines], second.net_amount) == (
        "installment", ["Design"], D("1800.00"))
    # the final invoice lists every billed line (not the optional or alternative one) and deducts what was billed
    assert [ln.description for ln in final.lines] == ["Concept", "Design", "Implementation"]
    assert (final.kind, final.deducted, final.net_amount) == ("final", D("3000.00"), D("2400.00"))
    assert first.due_date == dt.date(2027, 2, 14)


def test_line_items_beside_an_amount_and_several_lines_in_one_entry():
    first, second, final = plan(Installment(dt.date(2027, 1, 31), amount=D("1000.00")),
                                Installment(dt.date(2027, 3, 31), lines=(0, 1)),
                                Installment(dt.date(2027, 6, 30), amount=D("1400.00")))
    assert [(p.kind, p.net_amount, p.deducted) for p in (first, second, final)] == [
        ("installment", D("1000.00"), 0), ("installment", D("3000.00"), 0), ("final", D("1400.00"), D("4000.00"))]
    assert [ln.description for ln in second.lines] == ["Concept", "Design"]
    assert first.lines[0].unit == "lump_sum" and first.lines[0].net_amount == D("1000.00")


@pytest.mark.parametrize("items, expected", [
    # an unknown line
    ((Installment(dt.date(2027, 1, 31), lines=(7,)), Installment(dt.date(2027, 6, 30), amount=D("5400.00"))),
     [("payment.installments.0.lines.0", "no line 7: the order has lines 0 to 4")]),
    # an optional and an alternative line are never billed
    ((Installment(dt.date(2027, 1, 31), lines=(0, 2)), Installment(dt.date(2027, 6, 30), lines=(3, 1, 4))),
     [("payment.installments.0.lines.1", "line 2 is optional: only regular lines are billed"),
      ("payment.installments.1.lines.0", "line 3 is alternative: only regular lines are billed")]),
    # a line billed twice, in one entry and across entries
    ((Installment(dt.date(2027, 1, 31), lines=(0, 0)), Installment(dt.date(2027, 6, 30), lines=(1, 4))),
     [("payment.installments.0.lines.1", "line 0 is billed by installment 0 already")]),
    ((Installment(dt.date(2027, 1, 31), lines=(0, 1)), Installment(dt.date(2027, 6, 30), lines=(1, 4))),
     [("payment.installments.1.lines.0", "line 1 is billed by installment 0 already")]),
    # lines and an amount besides: more than the total, less than the total
    ((Installment(dt.date(2027, 1, 31), lines=(0, 1)), Installment(dt.date(2027, 6, 30), amount=D("2400.01"))),
     [("payment.installments", "the amounts and line items add up to 5400.01, the order total is 5400.00")]),
    ((Installment(dt.date(2027, 1, 31), lines=(0,)), Installment(dt.date(2027, 6, 30), lines=(4,))),
     [("payment.installments", "the amounts and line items add up to 3600.00, the order total is 5400.00")]),
    # lines with percentages, lines with an amount in one entry
    ((Installment(dt.date(2027, 1, 31), lines=(0,)), Installment(dt.date(2027, 6, 30), percentage=D(100))),
     [("payment.installments", "installments by line items go with amounts, not percentages")]),
    ((Installment(dt.date(2027, 1, 31), amount=D("1200.00"), lines=(0,)),
      Installment(dt.date(2027, 6, 30), amount=D("4200.00"))),
     [("payment.installments.0", "give either an amount, a percentage or line items")]),
])
def test_a_plan_by_line_items_stays_consistent_each_error_names_its_entry(items, expected):
    assert errors_of(*items) == expected


def test_a_plan_by_line_items_is_refused_where_the_lines_are_not_known():
    items = (Installment(dt.date(2027, 1, 31), lines=(0, 1)), Installment(dt.date(2027, 6, 30), lines=(4,)))
    assert errors_of(*items) == []
    assert errors_of(*items, lines=None) == [("payment.installments",
                                              "line items can be billed only with the order's lines")]


def draft_fields(lines: list[dict], payment: PaymentTerms, *, start=START, end=END) -> dict:
    return {"contact_person": {"name": "Erika", "email": "erika@acme.example"}, "currency": "EUR", "lines": lines,
            "sector": "design", "place_of_service": "DE", "project_name": "Relaunch", "description": "Website",
            "service_start": start, "service_end": end, "payment": payment,
            "confirmation": model.Confirmation("skip", skip_reason="framework contract", separate_agreement=True)}


def active(fields: dict, today: dt.date = TODAY) -> model.Order:
    o = model.build_draft(order_id=uuid.uuid4(), member_id="m1", client=CLIENT, client_id=CLIENT.id, fields=fields,
                          now=NOW)
    return model.approve(model.submit(o, today=today, exchange_rate_eur=D(1), rejection=None, flags=()), today=today)


def line(description: str, price: str, qty: str = "1", unit: str = "lump_sum", kind: str | None = None) -> dict:
    return {"description": description, "quantity": qty, "unit": unit, "unit_price": price} | (
        {"kind": kind} if kind else {})


def test_a_draft_with_a_plan_by_line_items_is_checked_against_its_own_lines_and_shows_the_shares():
    lines = [line("Concept", "1200.00"), line("Hosting", "500.00", kind="optional"), line("Build", "2400.00")]
    bad = PaymentTerms("installments", installments=(Installment(dt.date(2027, 1, 31), lines=(1,)),
                                                     Installment(dt.date(2027, 6, 30), amount=D("3600.00"))))
    with pytest.raises(InvalidInput) as refused:
        active(draft_fields(lines, bad))
    assert refused.value.errors[0][0] == "payment.installments.0.lines.0"
    good = PaymentTerms("installments", installments=(Installment(dt.date(2027, 1, 31), lines=(0,)),
                                                      Installment(dt.date(2027, 6, 30), lines=(2,))))
    o = active(draft_fields(lines, good))
    assert [share.net for share in o.installment_plan()] == [D("1200.00"), D("2400.00")]
    assert [(p.kind, p.net_amount, p.deducted) for p in o.schedule] == [("installment", D("1200.00"), 0),
                                                                        ("final", D("2400.00"), D("1200.00"))]


# -- price changes ---------------------------------------------------------------------------------

def monthly(first: dt.date = dt.date(2027, 1, 31), end: dt.date = dt.date(2027, 6, 30)) -> model.Order:
    """Support 450.00 a month and hosting 50.00 a month (an optional extra besides), invoiced on each period's first
    day from `first` on."""
    return active(draft_fields([line("Support", "450.00", unit="month"), line("Extra", "99.00", kind="optional"),
                                line("Hosting", "50.00", unit="month")],
                               PaymentTerms("recurring", 14, interval="month", first_invoice_date=first),
                               start=dt.date(2027, 1, 1), end=end))


def test_a_price_change_applies_from_its_period_on_and_keeps_earlier_periods_month_ends_included():
    o = monthly()
    # periods from 31 January: 28 February, 31 March, 30 April, 31 May, 30 June (clamped month ends)
    assert [p.period_start for p in o.schedule] == [dt.date(2027, 1, 31), dt.date(2027, 2, 28), dt.date(2027, 3, 31),
                                                    dt.date(2027, 4, 30), dt.date(2027, 5, 31), dt.date(2027, 6, 30)]
    changed, change = pricing.change_order_price(o, line=2, unit_price=D("65.00"), effective_from=dt.date(2027, 3, 31),
                                                 today=dt.date(2027, 2, 10))
    assert [p.net_amount for p in changed.schedule] == [D("500.00"), D("500.00"), D("515.00"), D("515.00"),
                                                        D("515.00"), D("515.00")]
    assert [ln.description for ln in changed.schedule[2].lines] == ["Support", "Hosting"]
    assert changed.schedule[2].lines[1].unit_price == D("65.00")
    assert changed.schedule[1].lines == o.schedule[1].lines
    assert (change.unit_price_before, change.unit_price, change.replanned) == (D("50.00"), D("65.00"), (3, 4, 5, 6))
    assert changed.lines[2].unit_price == D("65.00") and changed.version == o.version + 1
    # the plan value counts each period at its own price: two at 500.00, then one at 515.00
    assert values.plan_value(changed, today=dt.date(2027, 3, 31)) == D("1515.00")


def test_a_price_change_inside_or_before_an_invoiced_period_is_refused_with_the_reason():
    o = monthly()
    with pytest.raises(Conflict) as refused:  # 28 February's invoice date has come: that period may be invoiced
        pricing.change_order_price(o, line=0, unit_price=D("480.00"), effective_from=dt.date(2027, 2, 28),
                                   today=dt.date(2027, 3, 1))
    assert "2027-02-28 – 2027-03-30 is invoiced already" in str(refused.value)
    with pytest.raises(Conflict) as past:
        pricing.change_order_price(o, line=0, unit_price=D("480.00"), effective_from=dt.date(2027, 1, 15),
                                   today=dt.date(2027, 1, 20))
    assert "never retroactively: 2027-01-15 is in the past" in str(past.value)
    # an invoice issued ahead of its date counts as invoiced too
    issued = model.record_issued_invoice(o, uuid.uuid4(), "2027-0001", D("500.00"))
    issued = model.record_issued_invoice(issued, uuid.uuid4(), "2027-0002", D("500.00")) if issued else None
    assert issued is not None
    with pytest.raises(Conflict, match="2027-02-28 – 2027-03-30 is invoiced already"):
        pricing.change_order_price(issued, line=0, unit_price=D("480.00"), effective_from=dt.date(2027, 2, 28),
                                   today=dt.date(2027, 1, 5))
    later, _ = pricing.change_order_price(issued, line=0, unit_price=D("480.00"), effective_from=dt.date(2027, 3, 31),
                                          today=dt.date(2027, 1, 5))
    assert [p.net_amount for p in later.schedule][:3] == [D("500.00"), D("500.00"), D("530.00")]


@pytest.mark.parametrize("change, field", [
    ({"line": 3}, "line"),
    ({"line": 1}, "line"),  # the optional line is never billed
    ({"unit_price": D("0")}, "unit_price"),
    ({"unit_price": D("12.345")}, "unit_price"),
    ({"unit_price": D("450.00")}, "unit_price"),  # unchanged
    ({"effective_from": dt.date(2027, 3, 15)}, "effective_from"),  # not the start of a period
    ({"effective_from": dt.date(2027, 7, 1)}, "effective_from"),  # after the last period
])
def test_bad_price_changes_name_the_field(change, field):
    args = {"line": 0, "unit_price": D("480.00"), "effective_from": dt.date(2027, 3, 31)} | change
    with pytest.raises(InvalidInput) as refused:
        pricing.change_order_price(monthly(), today=dt.date(2027, 2, 10), **args)
    assert [f for f, _ in refused.value.errors] == [field]


def test_prices_change_only_on_active_recurring_orders():
    one_off = active(draft_fields([line("Work", "1000.00")], PaymentTerms("after_completion", 14,
                                                                          invoice_date=END)))
    with pytest.raises(Conflict, match="only on a recurring order"):
        pricing.change_order_price(one_off, line=0, unit_price=D("900.00"), effective_from=END, today=TODAY)
    draft = model.build_draft(order_id=uuid.uuid4(), member_id="m1", client=CLIENT, client_id=CLIENT.id,
                              fields=draft_fields([line("Support", "450.00", unit="month")], PaymentTerms(
                                  "recurring", interval="month", first_invoice_date=dt.date(2027, 1, 31))), now=NOW)
    with pytest.raises(Conflict, match="only on an active order, this one is draft"):
        pricing.change_order_price(draft, line=0, unit_price=D("480.00"), effective_from=dt.date(2027, 3, 31),
                                   today=TODAY)


def test_a_period_whose_draft_may_exist_keeps_its_price():
    """Invoicing drafts a planned invoice some days before its date: that period counts as invoiced."""
    o = monthly()
    with pytest.raises(Conflict, match="2027-03-31 – 2027-04-29 is invoiced already"):
        pricing.change_order_price(o, line=0, unit_price=D("480.00"), effective_from=dt.date(2027, 3, 31),
                                   today=dt.date(2027, 3, 25), draft_lead_days=7)
    changed, _ = pricing.change_order_price(o, line=0, unit_price=D("480.00"), effective_from=dt.date(2027, 3, 31),
                                            today=dt.date(2027, 3, 23), draft_lead_days=7)
    assert changed.schedule[2].net_amount == D("530.00")


def test_a_price_change_keeps_the_order_an_amount_that_can_be_billed():
    o = active(draft_fields([line("Support", "450.00", qty="1000", unit="month")],
                            PaymentTerms("recurring", 14, interval="month", first_invoice_date=dt.date(2027, 1, 31)),
                            start=dt.date(2027, 1, 1), end=dt.date(2027, 6, 30)))
    with pytest.raises(InvalidInput) as refused:
        pricing.change_order_price(o, line=0, unit_price=D("999999.99"), effective_from=dt.date(2027, 3, 31),
                                   today=dt.date(2027, 2, 10))
    assert [f for f, _ in refused.value.errors] == ["unit_price"]
    assert "above 999999999.99" in refused.value.errors[0][1]
