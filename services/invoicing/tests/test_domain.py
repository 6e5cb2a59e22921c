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
    pending, cancellation = model.request_cancellation(inv, cancellation_id=uuid.uuid4(), on=dt.date(2027, 2, 1),
                                                       reason=" wrong scope ", now=NOW)
    assert (pending.status, pending.cancelled_by, cancellation.status) == ("invoiced", cancellation.id, "issuing")
    assert model.reminders_due(pending, dt.date(2027, 12, 1), (7,)) == 0, "no reminder while it is being cancelled"
    with pytest.raises(Conflict, match="already being cancelled"):
        model.request_cancellation(pending, cancellation_id=uuid.uuid4(), on=NOW.date(), reason="x", now=NOW)
    numbered = model.number(cancellation, sequence=2)
    assert (numbered.kind, numbered.number, numbered.cancels_number, numbered.issue_date) == \
        ("cancellation", "2027-000002", "2027-000001", dt.date(2027, 2, 1))
    assert numbered.gross_total == inv.gross_total and numbered.payments == () and numbered.cancellation_reason == \
        "wrong scope"
    with pytest.raises(ValueError):
        model.cancel(pending, numbered)  # not before its documents are stored
    done = model.documents_stored(numbered, ())
    original = model.cancel(pending, done)
    assert (original.status, original.refund_due) == ("cancelled", D("500.00"))
    assert model.reminders_due(done, dt.date(2027, 12, 1), (7,)) == 0
    with pytest.raises(Conflict):
        model.request_cancellation(original, cancellation_id=uuid.uuid4(), on=NOW.date(), reason="x", now=NOW)
    with pytest.raises(Conflict, match="cancellation invoice cannot be cancelled"):
        model.request_cancellation(done, cancellation_id=uuid.uuid4(), on=NOW.date(), reason="x", now=NOW)


def test_a_cancellation_is_never_dated_before_the_invoice_it_cancels():
    inv = issued()  # 15 Jan 2027
    _, cancellation = model.request_cancellation(inv, cancellation_id=uuid.uuid4(), on=dt.date(2026, 12, 1),
                                                 reason="x", now=NOW)
    assert model.number(cancellation, sequence=5).issue_date == dt.date(2027, 1, 15)
    with pytest.raises(InvalidInput):
        model.request_cancellation(inv, cancellation_id=uuid.uuid4(), on=NOW.date(), reason=" ", now=NOW)


def test_issuing_in_steps_queue_check_number_documents():
    draft = invoice()
    queued = model.queue_issue(draft, on=dt.date(2027, 1, 20), by={"kind": "member", "id": "m1"})
    assert (queued.status, queued.number, queued.issue_on) == ("issuing", None, dt.date(2027, 1, 20))
    with pytest.raises(Conflict):
        model.queue_issue(queued, on=NOW.date())
    prepared = model.prepare(queued, buyer={"name": "Neu GmbH"}, order_invoices=[])
    assert prepared.buyer == {"name": "Neu GmbH"} and prepared.prepaid_amount == 0
    check = model.provisional(prepared)
    assert (check.number, check.issue_date, check.status) == ("2027-999999", dt.date(2027, 1, 20), "issuing")
    numbered = model.number(prepared, sequence=7)
    assert (numbered.number, numbered.due_date, numbered.status) == ("2027-000007", dt.date(2027, 2, 3), "issuing")
    done = model.documents_stored(numbered, (model.Document("pdf", "R.pdf", "application/pdf", "0" * 64),))
    assert (done.status, len(done.documents)) == ("invoiced", 1)
    with pytest.raises(ValueError):
        model.documents_stored(queued, ())  # documents come after the number
    held = model.hold_for_adjustment(prepared, ("BR-DE-6: phone",))
    assert (held.status, held.number, held.validation_errors) == ("waiting_for_adjustment", None, ("BR-DE-6: phone",))
    assert model.queue_issue(held, on=NOW.date()).validation_errors == (), "an advisor issues it again after adjusting"


def test_a_final_invoice_deducts_issued_installments_but_not_cancelled_ones():
    def installment(n, status):
        return replace(issued(invoice(lines=(model.Line("A", D(1), "day", D("100.00"), D("100.00"), "S", D(19)),)),
                              number=f"2027-00000{n}"), schedule_kind="installment", status=status)
    order_invoices = [installment(1, "paid"), installment(2, "invoiced"), installment(3, "cancelled"),
                      installment(4, "disputed")]
    final = replace(invoice(), schedule_kind="final")
    assert model.prepaid(final, order_invoices) == D("357.00")  # three of 119.00, the cancelled one not
    assert model.prepaid(replace(final, schedule_kind="installment"), order_invoices) == 0
    assert model.prepare(final, buyer=None, order_invoices=order_invoices).buyer == final.buyer


def test_a_draft_takes_the_orders_vat_and_terms_and_the_known_client():
    order = {"order_id": str(uuid.uuid4()), "member_id": "m1", "currency": "USD", "exchange_rate_eur": "0.92",
             "client": {"client_id": str(uuid.uuid4()), "name": "ACME", "kind": "company", "country": "US"},
             "contact_person": {"name": "Eva", "email": "eva@acme.example"}, "project_name": "P",
             "vat": [{"category": "O", "rate": "0", "note": "not subject to German VAT"}],
             "payment": {"due_in_days": 30}}
    plan = {"seq": 2, "kind": "installment", "invoice_date": "2027-03-01",
            "lines": [{"description": "A", "quantity": "2", "unit": "day", "unit_price": "500", "net_amount": "1000"}]}
    draft = model.draft_from_plan(plan, order, None, invoice_id=uuid.uuid4(), now=NOW)
    assert (draft.lines[0].vat_category, draft.vat_note, draft.due_in_days) == ("O", "not subject to German VAT", 30)
    assert (draft.buyer["name"], draft.buyer["address"], draft.exchange_rate_eur) == ("ACME", {"country": "US"},
                                                                                       D("0.92"))
    plain = model.draft_from_plan(plan, {**order, "vat": [], "payment": None}, {"name": "ACME Inc."},
                                  invoice_id=uuid.uuid4(), now=NOW)
    assert (plain.lines[0].vat_category, plain.lines[0].vat_rate, plain.vat_note, plain.due_in_days) == \
        ("S", D(19), None, 14)
    assert plain.buyer == {"name": "ACME Inc."}


def test_a_cancelled_order_discards_drafts_and_cancels_only_the_named_invoices():
    draft, waiting = invoice(), model.request_change(invoice(), "x")
    named, other, queued = issued(), issued(number="2027-000002"), model.queue_issue(invoice(), on=NOW.date())
    decided = model.order_cancelled([draft, waiting, named, other, queued], [named.id, draft.id])
    assert {i.id for i in decided.discard} == {draft.id, waiting.id}
    assert [i.id for i in decided.cancel] == [named.id]


def test_adjustments_are_recorded():
    inv = invoice()
    adjusted = model.adjust(inv, {"project_name": "Relaunch", "due_in_days": 30}, by="adv", at=NOW, today=NOW.date())
    assert adjusted.adjustments[0]["changes"] == {"project_name": {"before": None, "after": "Relaunch"},
                                                  "due_in_days": {"before": 14, "after": 30}}
    with pytest.raises(InvalidInput):
        model.adjust(inv, {"number": "x"}, by="adv", at=NOW, today=NOW.date())
    with pytest.raises(Conflict):
        model.adjust(issued(), {"project_name": "x"}, by="adv", at=NOW, today=NOW.date())


def test_a_final_invoice_waits_while_an_installment_of_its_order_is_being_issued_or_due():
    final = model.queue_issue(replace(invoice(), schedule_kind="final", invoice_date=dt.date(2027, 3, 31)),
                              on=dt.date(2027, 3, 31))
    same_order = dict(order_id=final.order_id, schedule_kind="installment")
    being_issued = model.queue_issue(replace(invoice(), **same_order), on=dt.date(2027, 3, 31))
    due_draft = replace(invoice(), **same_order, invoice_date=dt.date(2027, 2, 15))
    later_draft = replace(invoice(), **same_order, invoice_date=dt.date(2027, 4, 15))
    assert model.waits_for_installments(final, [final, being_issued])
    assert model.waits_for_installments(final, [final, due_draft])
    assert not model.waits_for_installments(final, [final, later_draft, issued(replace(invoice(), **same_order))])
    assert not model.waits_for_installments(being_issued, [final, being_issued]), "only a final invoice waits"


def test_a_cancellation_invoice_is_neither_adjusted_nor_discarded():
    _, cancellation = model.request_cancellation(issued(), cancellation_id=uuid.uuid4(), on=NOW.date(), reason="x",
                                                 now=NOW, by={"kind": "advisor", "id": "a1"})
    held = model.hold_for_adjustment(cancellation, ("BR-X: y",))
    assert held.issued_by == {"kind": "advisor", "id": "a1"}, "the cancellation is the advisor's, not the original's"
    with pytest.raises(Conflict):
        model.discard(held)
    with pytest.raises(Conflict):
        model.adjust(held, {"project_name": "x"}, by="a", at=NOW, today=NOW.date())
    assert model.order_cancelled([held], []).discard == ()


def test_dates_at_the_ends_of_the_calendar_never_overflow():
    assert model.days_after(dt.date(9999, 12, 30), 7) == dt.date.max, "a bound saturates"
    assert model.days_after(dt.date(1, 1, 1), -1) == dt.date.min
    assert model.days_after(dt.date(2027, 1, 1), 10**12) == dt.date.max
    assert model.reminder_cutoff(dt.date(1, 1, 5), 7) is None, "no due date is that early"
    assert model.reminder_cutoff(dt.date(2027, 2, 5), 7) == dt.date(2027, 1, 29)
    late = replace(issued(), due_date=dt.date(9999, 12, 25))
    assert model.reminders_due(late, dt.date(9999, 12, 31), (7, 21)) == 0
    assert model.reminders_due(late, dt.date(9999, 12, 31), (6,)) == 1
    with pytest.raises(InvalidInput) as e:
        model.issue(replace(invoice(), due_in_days=10**9), number="2027-000001", issue_date=dt.date(2027, 1, 15))
    assert e.value.errors[0][0] == "due_in_days"
    for on in (dt.date(9999, 12, 31), dt.date(1, 1, 1), dt.date(2100, 1, 1)):
        with pytest.raises(InvalidInput) as e:
            model.queue_issue(invoice(), on=on)
        assert e.value.errors[0][0] == "issue_date", on
    with pytest.raises(InvalidInput) as e:
        model.queue_issue(replace(invoice(), due_in_days=10**9), on=dt.date(2027, 1, 15))
    assert e.value.errors[0][0] == "due_in_days", "refused before it is queued, not when it is numbered"
    held = model.hold_for_adjustment(invoice(), ("due_in_days: ...",))
    assert (held.status, held.validation_errors) == ("waiting_for_adjustment", ("due_in_days: ...",))


def test_adjusting_refuses_nulls_unbounded_lines_and_dates():
    inv = invoice()

    def adjust(changes):
        return model.adjust(inv, changes, by="adv", at=NOW, today=NOW.date())
    line = {"description": "Workshop", "quantity": D(1), "unit": "day", "unit_price": D("640.00")}
    cases = {"lines": [{"lines": None}, {"lines": []}, {"lines": [line] * (model.MAX_LINES + 1)}, {"lines": "x"}],
             "invoice_date": [{"invoice_date": None}, {"invoice_date": dt.date(9999, 12, 31)}],
             "due_in_days": [{"due_in_days": None}, {"due_in_days": 121}, {"due_in_days": -1}],
             "lines.0.unit_price": [{"lines": [{**line, "unit_price": D("640.001")}]}],
             "lines.0": [{"lines": [{**line, "quantity": D(10**6), "unit_price": D("999999999.99")}]}, {"lines": [7]}]}
    for field, changes_list in cases.items():
        for changes in changes_list:
            with pytest.raises(InvalidInput) as e:
                adjust(changes)
            assert e.value.errors[0][0] == field, changes
    with pytest.raises(InvalidInput) as e:
        adjust({"lines": [{**line, "quantity": D(1000), "unit_price": D("999999.99")}] * 2})
    assert e.value.errors == [("lines", "the invoice's gross total (2379999976.20) must not exceed 999999999.99")]
    jpy = invoice(currency="JPY")
    with pytest.raises(InvalidInput) as e:
        model.adjust(jpy, {"lines": [{**line, "unit_price": D("640.5")}]}, by="a", at=NOW, today=NOW.date())
    assert e.value.errors == [("lines.0.unit_price", "at most 0 decimals in JPY")]
    adjusted = adjust({"lines": [line], "project_name": None})
    assert [(ln.net_amount, ln.vat_rate) for ln in adjusted.lines] == [(D("640.00"), D(19))]


def test_payments_are_bounded_and_not_dated_after_today():
    inv = issued()

    def pay(amount, on=None, latest=None):
        return model.record_payment(inv, payment_id=uuid.uuid4(), amount=amount, received_on=on or NOW.date(),
                                    by="a", latest=latest)
    for amount in (D("1e30"), D(0), D(-1), D("NaN"), D("Infinity"), D("10.000"), D("10.001")):
        with pytest.raises(InvalidInput) as e:
            pay(amount)
        assert e.value.errors[0][0] == "amount", amount
    for on in (dt.date(1, 1, 1), dt.date(9999, 12, 31)):
        with pytest.raises(InvalidInput) as e:
            pay(D("10.00"), on)
        assert e.value.errors[0][0] == "received_on"
    with pytest.raises(InvalidInput, match="after today"):
        pay(D("10.00"), dt.date(2027, 1, 11), latest=dt.date(2027, 1, 10))
    assert pay(D("10.00"), dt.date(2027, 1, 10), latest=dt.date(2027, 1, 10)).paid_total == D("10.00")
    assert pay(D("1E+1")).payments[0].amount == D("10.00") and str(pay(D("1E+1")).payments[0].amount) == "10.00"
    _, storno = model.request_cancellation(inv, cancellation_id=uuid.uuid4(), on=NOW.date(), reason="x", now=NOW)
    storno = model.documents_stored(model.number(storno, sequence=2), ())
    with pytest.raises(Conflict, match="cannot be paid"):
        model.record_payment(storno, payment_id=uuid.uuid4(), amount=D("1.00"), received_on=NOW.date(), by="a")
    with pytest.raises(Conflict, match="cancellation invoice cannot be cancelled"):
        model.request_cancellation(replace(storno, status="issuing"), cancellation_id=uuid.uuid4(), on=NOW.date(),
                                   reason="x", now=NOW)


def test_a_final_invoice_lists_each_deducted_invoice_with_its_vat_per_rate_and_what_remains():
    def partial(n, day, lines, status="invoiced"):
        inv = replace(invoice(lines=lines), seq=n, invoice_date=day)
        return replace(model.issue(inv, number=f"2027-00000{n}", issue_date=day), status=status)
    s19 = (model.Line("Abschlag", D(1), "lump_sum", D("1000.00"), D("1000.00"), "S", D(19)),)
    mixed = (model.Line("Text", D(1), "lump_sum", D("500.00"), D("500.00"), "S", D(19)),
             model.Line("Rechte", D(1), "lump_sum", D("300.00"), D("300.00"), "S", D(7)))
    later, earlier = partial(2, dt.date(2027, 2, 15), mixed), partial(1, dt.date(2027, 1, 15), s19, "paid")
    dropped = partial(3, dt.date(2027, 2, 20), s19, "cancelled")
    final = replace(invoice(lines=(model.Line("Alles", D(1), "lump_sum", D("4000.00"), D("4000.00"), "S", D(19)),
                                   model.Line("Rechte", D(1), "lump_sum", D("1000.00"), D("1000.00"), "S", D(7)))),
                    schedule_kind="final", seq=4)
    prepared = model.prepare(final, buyer=None, order_invoices=[later, dropped, earlier, final])
    assert [(d.number, d.issue_date, d.net_amount, d.gross_amount) for d in prepared.deductions] == [
        ("2027-000001", dt.date(2027, 1, 15), D("1000.00"), D("1190.00")),
        ("2027-000002", dt.date(2027, 2, 15), D("800.00"), D("916.00"))], "in the order issued, the cancelled not"
    assert [(v.rate, v.taxable_amount, v.tax_amount) for v in prepared.deductions[1].vat] == [
        (D(7), D("300.00"), D("21.00")), (D(19), D("500.00"), D("95.00"))]
    # whole service: 4000 at 19 % (760.00) and 1000 at 7 % (70.00), 5830.00 gross
    assert (prepared.gross_total, prepared.prepaid_amount, prepared.amount_due) == (
        D("5830.00"), D("2106.00"), D("3724.00"))
    assert (prepared.remaining_net, prepared.remaining_tax) == (D("3200.00"), D("524.00"))
    assert [(v.rate, v.taxable_amount, v.tax_amount) for v in prepared.remaining_vat] == [
        (D(7), D("700.00"), D("49.00")), (D(19), D("2500.00"), D("475.00"))]
    assert model.deductions(replace(final, schedule_kind="after_completion"), [earlier]) == ()


def test_a_final_invoice_waits_while_a_partial_invoice_is_being_cancelled():
    final = replace(invoice(), schedule_kind="final", seq=3, invoice_date=dt.date(2027, 3, 31))
    partial = issued()
    being_cancelled, storno = model.request_cancellation(partial, cancellation_id=uuid.uuid4(), on=NOW.date(),
                                                         reason="x", now=NOW)
    assert model.waits_for_installments(final, [being_cancelled])
    done = model.cancel(being_cancelled, model.documents_stored(model.number(storno, sequence=2), ()))
    assert not model.waits_for_installments(final, [done])
    assert model.deductions(final, [done]) == ()


def test_an_issued_cancellation_invoice_has_its_own_status_and_is_never_owed():
    inv = issued()
    pending, storno = model.request_cancellation(inv, cancellation_id=uuid.uuid4(), on=dt.date(2027, 1, 20),
                                                 reason="x", now=NOW)
    done = model.documents_stored(model.number(storno, sequence=2), ())
    assert (done.status, done.amount_due, done.open_amount) == ("cancellation", D("0.00"), D("0.00"))
    assert done.payable_amount == inv.gross_total == D("1837.04"), "its X-Rechnung (381) credits the gross"
    assert model.reminders_due(done, dt.date(2027, 12, 31), (7, 21, 35)) == 0
    with pytest.raises(Conflict):
        model.remind(done, on=dt.date(2027, 12, 31))
    with pytest.raises(Conflict):
        model.dispute(done, "no")
    original = model.cancel(pending, done)
    assert (original.status, original.open_amount) == ("cancelled", D("0.00"))
    with pytest.raises(InvalidInput, match="on or after the invoice it cancels"):
        model.issue(replace(storno, status="draft"), number="2027-000003", issue_date=dt.date(2027, 1, 14))


def test_partial_and_final_drafts_know_the_schedule_and_the_orders_total():
    order = {"order_id": str(uuid.uuid4()), "member_id": "m1", "currency": "EUR",
             "client": {"client_id": str(uuid.uuid4()), "name": "ACME", "kind": "company", "country": "DE"},
             "contact_person": {"name": "Eva", "email": "eva@acme.example"}, "net_total": "4680.00",
             "gross_total": "5569.20", "vat": [{"category": "S", "rate": "19", "taxable_amount": "4680.00",
                                                "tax_amount": "889.20"}],
             "schedule": [{"seq": 1, "kind": "installment"}, {"seq": 2, "kind": "installment"},
                          {"seq": 3, "kind": "final"}]}
    plan = {"seq": 2, "kind": "installment", "invoice_date": "2027-02-15",
            "lines": [{"description": "Abschlag 2/3", "quantity": "1", "unit": "lump_sum", "unit_price": "1404.00",
                       "net_amount": "1404.00"}]}
    draft = model.draft_from_plan(plan, order, None, invoice_id=uuid.uuid4(), now=NOW)
    assert (draft.seq, draft.installments) == (2, 3)
    assert draft.order_total == model.OrderTotal(D("4680.00"), D("889.20"), D("5569.20"))
    other = model.draft_from_plan({**plan, "kind": "after_completion", "seq": 1}, order, None,
                                  invoice_id=uuid.uuid4(), now=NOW)
    assert (other.installments, other.order_total) == (None, None)
