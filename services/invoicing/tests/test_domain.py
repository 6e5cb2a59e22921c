"""The invoicing domain alone: status machine, numbering, totals, final deduction,
payments, reminders and cancellation."""
import datetime as dt
import uuid
from dataclasses import replace
from decimal import Decimal as D

import pytest

from kontor.errors import Conflict, InvalidInput
from kontor_invoicing.domain import model

pytestmark = pytest.mark.unit
NOW = dt.datetime(2027, 1, 10, 9, tzinfo=dt.UTC)


def invoice(lines=None, currency="EUR", **kw) -> model.Invoice:
    lines = lines or (model.Line("Design", D("2"), "day", D("640.00"), D("1280.00"), "S", D("19")),
                      model.Line("Copy", D("3.5"), "hour", D("75.35"), D("263.73"), "S", D("19")))
    return model.Invoice(id=uuid.uuid4(), order_id=uuid.uuid4(), member_id="m1", client_id=uuid.uuid4(), seq=1,
                         kind="invoice", schedule_kind="installment", status="draft", currency=currency, lines=lines,
                         invoice_date=dt.date(2027, 1, 15), due_in_days=14, created_at=NOW, **kw)


def issued(inv=None, number="2027-000001") -> model.Invoice:
    return model.issue(inv or invoice(), number=number, issue_date=dt.date(2027, 1, 15))


def test_numbering_format():
    assert model.format_number(2026, 123) == "2026-000123"
    assert model.format_number(2027, 1) == "2027-000001"
    with pytest.raises(ValueError):
        model.format_number(2027, 0)


def test_totals_per_vat_category():
    inv = invoice(lines=(model.Line("A", D(1), "day", D("100.00"), D("100.00"), "S", D("19")),
                         model.Line("B", D(1), "day", D("50.00"), D("50.00"), "S", D("7")),
                         model.Line("C", D(1), "day", D("33.33"), D("33.33"), "S", D("19"))))
    assert [(v.rate, v.taxable_amount, v.tax_amount) for v in inv.vat_breakdown] == [
        (D("7"), D("50.00"), D("3.50")), (D("19"), D("133.33"), D("25.33"))]
    assert (inv.net_total, inv.tax_total, inv.gross_total) == (D("183.33"), D("28.83"), D("212.16"))
    jpy = invoice(currency="JPY", lines=(model.Line("A", D(1), "day", D("1001"), D("1001"), "S", D("19")),))
    assert jpy.tax_total == D("190") and jpy.gross_total == D("1191")


def test_final_invoice_deducts_the_installments():
    final = issued(replace(invoice(), schedule_kind="final", prepaid_amount=D("1200.00")))
    assert final.gross_total == D("1837.04") and final.amount_due == D("637.04")


def test_status_machine():
    draft = invoice()
    waiting = model.request_change(draft, "wrong hours")
    assert waiting.status == "waiting_for_adjustment"
    with pytest.raises(Conflict) as e:
        model.request_change(waiting, "again")
    assert e.value.current_status == "waiting_for_adjustment"
    inv = issued(waiting)
    assert (inv.status, inv.due_date) == ("invoiced", dt.date(2027, 1, 29))
    for action in (lambda i: model.issue(i, number="x", issue_date=NOW.date()), model.discard,
                   lambda i: model.request_change(i, "x"), model.resolve_dispute):
        with pytest.raises(Conflict):
            action(inv)
    disputed = model.dispute(inv, "never ordered the copy editing")
    assert model.resolve_dispute(disputed).status == "invoiced"
    with pytest.raises(Conflict):
        model.remind(disputed, on=NOW.date())
    assert model.discard(invoice()).status == "discarded"


def test_payments_partial_full_and_over():
    inv = issued()  # gross 1837.04
    p1 = model.record_payment(inv, payment_id=uuid.uuid4(), amount=D("1000.00"), received_on=dt.date(2027, 1, 20),
                              by="a")
    assert (p1.status, p1.open_amount) == ("invoiced", D("837.04"))
    pid = uuid.uuid4()
    p2 = model.record_payment(p1, payment_id=pid, amount=D("837.04"), received_on=dt.date(2027, 1, 25), by="a")
    assert (p2.status, p2.open_amount, p2.overpaid_amount) == ("paid", D("0"), D("0"))
    assert model.record_payment(p2, payment_id=pid, amount=D("837.04"), received_on=dt.date(2027, 1, 25), by="a") is p2
    p3 = model.record_payment(p2, payment_id=uuid.uuid4(), amount=D("10.00"), received_on=dt.date(2027, 1, 26), by="a")
    assert p3.overpaid_amount == D("10.00"), "an overpayment is kept and shown"
    with pytest.raises(InvalidInput) as e:
        model.record_payment(inv, payment_id=uuid.uuid4(), amount=D("1.001"), received_on=NOW.date(), by="a")
    assert e.value.errors[0][0] == "amount"


def test_reminder_schedule():
    inv = issued()  # due 29 Jan
    days = (7, 21, 35)
    assert model.reminders_due(inv, dt.date(2027, 2, 4), days) == 0
    assert model.reminders_due(inv, dt.date(2027, 2, 5), days) == 1
    assert model.reminders_due(inv, dt.date(2027, 2, 19), days) == 2
    assert model.reminders_due(inv, dt.date(2027, 3, 5), days) == 3
    reminded = model.remind(inv, on=dt.date(2027, 2, 5))
    assert (reminded.reminders_sent, reminded.last_reminder_on) == (1, dt.date(2027, 2, 5))
    paid = model.record_payment(inv, payment_id=uuid.uuid4(), amount=inv.gross_total, received_on=NOW.date(), by="a")
    assert model.reminders_due(paid, dt.date(2027, 3, 5), days) == 0


def test_cancellation_invoice_refers_to_the_original_and_refunds_payments():
    inv = model.record_payment(issued(), payment_id=uuid.uuid4(), amount=D("500.00"), received_on=NOW.date(), by="a")
    original, cancellation = model.cancel(inv, cancellation_id=uuid.uuid4(), number="2027-000002",
                                          issue_date=dt.date(2027, 2, 1), now=NOW)
    assert (original.status, original.refund_due, original.cancelled_by) == ("cancelled", D("500.00"), cancellation.id)
    assert (cancellation.kind, cancellation.number, cancellation.cancels_number) == \
        ("cancellation", "2027-000002", "2027-000001")
    assert cancellation.gross_total == inv.gross_total and cancellation.payments == ()
    assert model.reminders_due(cancellation, dt.date(2027, 12, 1), (7,)) == 0
    with pytest.raises(Conflict):
        model.cancel(original, cancellation_id=uuid.uuid4(), number="x", issue_date=NOW.date(), now=NOW)


def test_adjustments_are_recorded():
    inv = invoice()
    adjusted = model.adjust(inv, {"project_name": "Relaunch", "due_in_days": 30}, by="adv", at=NOW, today=NOW.date())
    assert adjusted.adjustments[0]["changes"] == {"project_name": {"before": None, "after": "Relaunch"},
                                                  "due_in_days": {"before": 14, "after": 30}}
    with pytest.raises(InvalidInput):
        model.adjust(inv, {"number": "x"}, by="adv", at=NOW, today=NOW.date())
    with pytest.raises(Conflict):
        model.adjust(issued(), {"project_name": "x"}, by="adv", at=NOW, today=NOW.date())
