"""Contract rules of recurring orders (renewal, notice, pauses) and tidying up: pure domain."""
import datetime as dt
import uuid
from decimal import Decimal

import pytest

from kontor.errors import Conflict, InvalidInput
from kontor_orders.domain import contract, model
from kontor_orders.domain.schedule import Installment, PaymentTerms

pytestmark = pytest.mark.unit
D = Decimal
NOW = dt.datetime(2026, 11, 22, 9, tzinfo=dt.UTC)
TODAY = dt.date(2026, 11, 22)
CLIENT = model.ClientRef(uuid.uuid4(), "ACME", "company", "DE136695976", "DE", "de", "ok")


def active(payment, start=dt.date(2027, 1, 1), end=dt.date(2027, 6, 30), lines=None):
    fields = {
        "contact_person": {"name": "Erika", "email": "erika@acme.example"}, "currency": "EUR",
        "lines": lines or [{"description": "Care", "quantity": "1", "unit": "month", "unit_price": "500.00"}],
        "sector": "design", "place_of_service": "DE", "project_name": "Care", "description": "Website care",
        "service_start": start, "service_end": end,
        "confirmation": model.Confirmation("skip", skip_reason="framework agreement"), "payment": payment,
    }
    o = model.build_draft(order_id=uuid.uuid4(), member_id="m1", client=CLIENT, client_id=CLIENT.id, fields=fields,
                          now=NOW)
    o = model.submit(o, today=TODAY, exchange_rate_eur=D(1), rejection=None, flags=())
    return model.approve(o, today=TODAY)


def monthly(start=dt.date(2027, 1, 1), end=dt.date(2027, 6, 30)):
    return active(PaymentTerms("recurring", 14, interval="month", first_invoice_date=start), start, end)


@pytest.mark.parametrize("start, months, end", [
    (dt.date(2027, 1, 31), 1, dt.date(2027, 2, 28)),  # no 31 Feb: the month's last day
    (dt.date(2028, 1, 31), 1, dt.date(2028, 2, 29)),  # leap year
    (dt.date(2027, 1, 30), 1, dt.date(2027, 2, 28)),
    (dt.date(2027, 1, 28), 1, dt.date(2027, 2, 27)),
    (dt.date(2027, 3, 1), 1, dt.date(2027, 3, 31)),
    (dt.date(2027, 1, 31), 2, dt.date(2027, 3, 30)),
    (dt.date(2027, 8, 31), 6, dt.date(2028, 2, 29)),
    (dt.date(2027, 7, 1), 12, dt.date(2028, 6, 30)),
    (dt.date(2027, 12, 31), 2, dt.date(2028, 2, 29)),
])
def test_term_end_across_month_ends(start, months, end):
    assert contract.term_end(start, months) == end


@pytest.mark.parametrize("end, months, deadline", [
    (dt.date(2027, 6, 30), 3, dt.date(2027, 3, 31)),  # a month's last day: the last day months before
    (dt.date(2027, 3, 31), 1, dt.date(2027, 2, 28)),
    (dt.date(2028, 3, 31), 1, dt.date(2028, 2, 29)),
    (dt.date(2027, 2, 28), 1, dt.date(2027, 1, 31)),
    (dt.date(2027, 3, 30), 1, dt.date(2027, 2, 28)),  # clamped
    (dt.date(2027, 5, 15), 2, dt.date(2027, 3, 15)),
    (dt.date(2027, 12, 31), 0, dt.date(2027, 12, 31)),
])
def test_notice_deadline_across_month_ends(end, months, deadline):
    assert contract.notice_deadline(end, months) == deadline


def test_renewal_after_the_deadline_plans_the_next_term():
    order = contract.start_auto_renewal(monthly(), term_months=3, notice_months=1, today=TODAY)
    assert contract.current_deadline(order) == dt.date(2027, 5, 31)
    assert not contract.renewal_due(order, as_of=dt.date(2027, 5, 31))
    assert contract.renewal_due(order, as_of=dt.date(2027, 6, 1))
    renewed, added = contract.renew(order)
    assert renewed.service_end == dt.date(2027, 9, 30)
    new = [s for s in renewed.schedule if s.seq in added]
    assert [s.invoice_date for s in new] == [dt.date(2027, 7, 1), dt.date(2027, 8, 1), dt.date(2027, 9, 1)]
    assert [s.seq for s in new] == [7, 8, 9]
    assert all(s.net_amount == D("500.00") for s in new)
    assert new[-1].period_end == dt.date(2027, 9, 30)
    assert contract.current_deadline(renewed) == dt.date(2027, 8, 31)
    # the second renewal counts from the first renewed term's start, not from the clamped end
    twice, _ = contract.renew(renewed)
    assert twice.service_end == dt.date(2027, 12, 31)


def test_renewal_from_the_31st_keeps_the_months_ends():
    order = monthly(start=dt.date(2027, 1, 1), end=dt.date(2027, 1, 30))
    order = contract.start_auto_renewal(order, term_months=1, notice_months=0, today=TODAY)  # anchor 31 Jan
    ends = []
    for _ in range(3):
        order, _added = contract.renew(order)
        ends.append(order.service_end)
    assert ends == [dt.date(2027, 2, 28), dt.date(2027, 3, 30), dt.date(2027, 4, 30)]


def test_reminder_once_per_term_before_the_deadline():
    order = contract.start_auto_renewal(monthly(), term_months=6, notice_months=1, today=TODAY)
    assert contract.reminder_due(order, as_of=dt.date(2027, 5, 16), reminder_days=14) is None
    assert contract.reminder_due(order, as_of=dt.date(2027, 5, 17), reminder_days=14) == dt.date(2027, 5, 31)
    reminded = contract.remind(order)
    assert contract.reminder_due(reminded, as_of=dt.date(2027, 5, 20), reminder_days=14) is None
    renewed, _ = contract.renew(reminded)
    assert contract.reminder_due(renewed, as_of=dt.date(2027, 11, 20), reminder_days=14) == dt.date(2027, 11, 30)


def test_cancel_before_the_deadline_stops_renewal_after_it_is_refused():
    order = contract.start_auto_renewal(monthly(), term_months=6, notice_months=3, today=TODAY)
    with pytest.raises(Conflict, match="2027-03-31"):
        contract.cancel(order, today=dt.date(2027, 4, 1))
    cancelled = contract.cancel(order, today=dt.date(2027, 3, 31))
    assert cancelled.contract.state == "cancelled"
    assert not contract.renewal_due(cancelled, as_of=dt.date(2027, 7, 1))
    with pytest.raises(Conflict):
        contract.cancel(cancelled, today=dt.date(2027, 3, 31))


def test_a_one_off_contract_cannot_be_cancelled_here_and_finishes_after_its_period():
    order = monthly()
    with pytest.raises(Conflict, match="one-off"):
        contract.cancel(order, today=TODAY)
    assert not contract.finish_due(order, as_of=dt.date(2027, 6, 30))
    assert contract.finish_due(order, as_of=dt.date(2027, 7, 1))
    assert contract.finish(order).contract.state == "finished"


def test_auto_renewal_input_names_fields_and_needs_a_recurring_order():
    with pytest.raises(InvalidInput) as exc:
        contract.start_auto_renewal(monthly(), term_months=0, notice_months=99, today=TODAY)
    assert {f for f, _ in exc.value.errors} == {"term_months", "notice_months"}
    once = active(PaymentTerms("after_completion", 14, invoice_date=dt.date(2027, 7, 1)))
    with pytest.raises(Conflict, match="recurring"):
        contract.start_auto_renewal(once, term_months=3, notice_months=1, today=TODAY)


def test_pause_drops_the_paused_months_and_resume_plans_them_again():
    order = monthly()
    paused, dropped = contract.pause(order, start=dt.date(2027, 3, 1), end=None, today=TODAY)
    assert [s.invoice_date for s in paused.schedule] == [dt.date(2027, 1, 1), dt.date(2027, 2, 1)]
    assert dropped == (3, 4, 5, 6)
    assert paused.contract.state == "paused"
    with pytest.raises(Conflict):
        contract.pause(paused, start=dt.date(2027, 4, 1), end=None, today=TODAY)
    resumed, added = contract.resume(paused, start=dt.date(2027, 5, 1), today=TODAY)
    assert [s.invoice_date for s in resumed.schedule] == [dt.date(2027, 1, 1), dt.date(2027, 2, 1),
                                                         dt.date(2027, 5, 1), dt.date(2027, 6, 1)]
    assert [s.seq for s in resumed.schedule] == [1, 2, 7, 8] and added == (7, 8)  # dropped seqs are never reused
    assert resumed.contract.state == "running"
    assert resumed.contract.pauses == (contract.Pause(dt.date(2027, 3, 1), dt.date(2027, 4, 30)),)


def test_a_bounded_pause_keeps_later_periods_and_renewal_skips_paused_ones():
    order = contract.start_auto_renewal(monthly(), term_months=3, notice_months=0, today=TODAY)
    paused, _ = contract.pause(order, start=dt.date(2027, 4, 1), end=dt.date(2027, 5, 31), today=TODAY)
    assert [s.invoice_date.month for s in paused.schedule] == [1, 2, 3, 6]
    assert not contract.pause_over(paused, as_of=dt.date(2027, 5, 31))
    assert contract.pause_over(paused, as_of=dt.date(2027, 6, 1))
    open_ended, _ = contract.pause(order, start=dt.date(2027, 6, 1), end=None, today=TODAY)
    renewed, added = contract.renew(open_ended)
    assert added == () and renewed.service_end == dt.date(2027, 9, 30)


def test_pause_input_and_invoiced_periods():
    order = monthly()
    with pytest.raises(InvalidInput, match="past"):
        contract.pause(order, start=dt.date(2026, 11, 1), end=None, today=TODAY)
    with pytest.raises(InvalidInput) as exc:
        contract.pause(order, start=dt.date(2027, 3, 1), end=dt.date(2027, 2, 1), today=TODAY)
    assert exc.value.errors[0][0] == "until"
    # the draft of the January invoice may exist a week before
    with pytest.raises(Conflict, match="invoiced"):
        contract.pause(order, start=dt.date(2027, 1, 1), end=None, today=dt.date(2026, 12, 28), draft_lead_days=7)


def test_tidy_up_archives_fully_invoiced_lines_and_keeps_the_values():
    lines = [{"description": "Concept", "quantity": "1", "unit": "lump_sum", "unit_price": "1000.00"},
             {"description": "Build", "quantity": "1", "unit": "lump_sum", "unit_price": "3000.00"}]
    terms = PaymentTerms("installments", 14, installments=(Installment(dt.date(2027, 2, 1), lines=(0,)),
                                                           Installment(dt.date(2027, 6, 30), amount=D("3000.00"))))
    order = active(terms, lines=lines)
    with pytest.raises(Conflict, match="no fully invoiced"):
        contract.tidy_up(order)
    order = model.record_issued_invoice(order, uuid.uuid4(), "2027-000001", D("1000.00"))
    tidied, moved = contract.tidy_up(order)
    assert moved == (0,) and tidied.archived_lines == (0,)
    assert tidied.net_total == order.net_total == D("4000.00")
    with pytest.raises(Conflict):
        contract.tidy_up(tidied)
    done = model.record_issued_invoice(tidied, uuid.uuid4(), "2027-000002", D("3000.00"))
    assert contract.tidy_up(done)[1] == (1,)


def test_a_renewing_order_is_not_completed_until_its_contract_is_cancelled():
    order = contract.start_auto_renewal(monthly(end=dt.date(2027, 1, 31)), term_months=1, notice_months=0,
                                        today=TODAY)
    order = model.record_issued_invoice(order, uuid.uuid4(), "2027-000001", D("500.00"))
    assert contract.renewal_due(order, as_of=dt.date(2027, 2, 1))
    with pytest.raises(Conflict, match="renews automatically"):
        model.complete(order, today=dt.date(2027, 2, 1))
    cancelled = contract.cancel(order, today=dt.date(2027, 1, 31))
    assert model.complete(cancelled, today=dt.date(2027, 2, 1)).status == "completed"
