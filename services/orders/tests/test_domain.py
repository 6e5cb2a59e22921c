"""The orders domain alone: state machine, VAT determination, billing schedules, checks."""
import datetime as dt
import io
import random
import uuid
import zipfile
from dataclasses import replace
from decimal import Decimal

import pytest

from kontor.errors import Conflict, InvalidInput
from kontor_orders.domain import attachments, model
from kontor_orders.domain.catalogue import SECTORS
from kontor_orders.domain.checks import MinimumFeeRule, minimum_fee_flags, rejection_for
from kontor_orders.domain.schedule import Installment, Line, PaymentTerms, compute_schedule, validate_terms
from kontor_orders.domain.vat import determine_vat

pytestmark = pytest.mark.unit
NOW = dt.datetime(2026, 11, 22, 9, tzinfo=dt.UTC)
TODAY = dt.date(2026, 11, 22)
D = Decimal


@pytest.mark.parametrize("sector, place, kind, vat_id, category, rate", [
    ("design", "DE", "company", "DE136695976", "S", "19"),
    ("design", "DE", "person", None, "S", "19"),
    ("copyright_licensing", "DE", "company", None, "S", "7"),
    ("teaching", "DE", "public_body", None, "E", "0"),
    ("design", "EU", "company", "FR40303265045", "AE", "0"),
    ("design", "EU", "public_body", "ATU13585627", "AE", "0"),
    ("design", "EU", "company", "DE136695976", "S", "19"),  # a German VAT id: no reverse charge
    ("design", "EU", "company", None, "S", "19"),  # no VAT id: German VAT
    ("design", "EU", "person", None, "S", "19"),
    ("copyright_licensing", "EU", "person", None, "S", "7"),
    ("design", "OTHER", "company", "CHE-116.281.710 MWST", "O", "0"),
    ("design", "OTHER", "company", None, "O", "0"),
    ("design", "OTHER", "person", None, "S", "19"),
    ("teaching", "OTHER", "person", None, "E", "0"),
    ("teaching_uncertified", "DE", "public_body", None, "S", "19"),  # no certificate: no § 4 Nr. 21 exemption
    ("teaching_uncertified", "DE", "person", None, "S", "19"),
    ("teaching_uncertified", "EU", "company", "FR40303265045", "AE", "0"),
    ("teaching_uncertified", "OTHER", "person", None, "S", "19"),
    ("journalism", "DE", "company", None, "S", "7"),
])
def test_vat_determination(sector, place, kind, vat_id, category, rate):
    vat = determine_vat(sector=SECTORS[sector], place_of_service=place, client_kind=kind, client_vat_id=vat_id)
    assert (vat.category, vat.rate) == (category, D(rate))
    if category in ("AE", "E", "O"):
        assert vat.note("de") and vat.note("en")


LINES = (Line("Work", D(1), "lump_sum", D("3000.00"), D("3000.00")),)


def schedule(terms, lines=LINES, currency="EUR", start=dt.date(2027, 1, 1), end=dt.date(2027, 6, 30)):
    return compute_schedule(terms, lines, currency=currency, service_start=start, service_end=end, activated_on=TODAY)


def test_three_installments_by_percentage_final_takes_the_remainder():
    terms = PaymentTerms("installments", 14, installments=(
        Installment(dt.date(2027, 1, 15), percentage=D("33.33")),
        Installment(dt.date(2027, 3, 15), percentage=D("33.33")),
        Installment(dt.date(2027, 6, 30), percentage=D("33.34"))))
    lines = (Line("Work", D(1), "lump_sum", D("1000.00"), D("1000.00")),)
    first, second, final = schedule(terms, lines)
    assert [p.net_amount for p in (first, second, final)] == [D("333.30"), D("333.30"), D("333.40")]
    assert (final.kind, final.deducted, final.lines) == ("final", D("666.60"), lines)
    assert first.due_date == dt.date(2027, 1, 29)
    assert sum(p.net_amount for p in (first, second, final)) == D("1000.00")


def test_jpy_in_three_equal_thirds():
    terms = PaymentTerms("installments", installments=tuple(
        Installment(dt.date(2027, m, 1), percentage=p) for m, p in ((1, D("33.33")), (2, D("33.33")), (3, D("33.34")))))
    lines = (Line("Work", D(1), "lump_sum", D("1000"), D("1000")),)
    amounts = [p.net_amount for p in schedule(terms, lines, currency="JPY")]
    assert amounts == [D("333"), D("333"), D("334")]


def test_installments_by_amount_must_add_up_exactly():
    items = (Installment(dt.date(2027, 1, 1), amount=D("1000.00")),
             Installment(dt.date(2027, 2, 1), amount=D("1999.99")))
    errors = validate_terms(PaymentTerms("installments", installments=items), total=D("3000.00"), currency="EUR",
                            service_start=dt.date(2027, 1, 1), service_end=dt.date(2027, 6, 30))
    assert errors == [("payment.installments", "the amounts add up to 2999.99, the order total is 3000.00")]
    ok = (items[0], Installment(dt.date(2027, 2, 1), amount=D("2000.00")))
    planned = schedule(PaymentTerms("installments", installments=ok))
    assert [(p.kind, p.net_amount, p.deducted) for p in planned] == [("installment", D("1000.00"), 0),
                                                                       ("final", D("2000.00"), D("1000.00"))]


@pytest.mark.parametrize("items, field", [
    ((), "payment.installments"),
    (tuple(Installment(dt.date(2027, 1, i), percentage=D(25)) for i in range(1, 5)), "payment.installments"),
    ((Installment(dt.date(2027, 1, 1)),), "payment.installments.0"),
    ((Installment(dt.date(2027, 2, 1), percentage=D(50)), Installment(dt.date(2027, 1, 1), percentage=D(50))),
     "payment.installments.1.date"),
    ((Installment(dt.date(2027, 1, 1), percentage=D(50)), Installment(dt.date(2027, 2, 1), amount=D("1500.00"))),
     "payment.installments"),
    ((Installment(dt.date(2027, 1, 1), amount=D("3000.001")),), "payment.installments.0.amount"),
])
def test_bad_installments_name_the_field(items, field):
    errors = validate_terms(PaymentTerms("installments", installments=items), total=D("3000.00"), currency="EUR",
                            service_start=dt.date(2027, 1, 1), service_end=dt.date(2027, 6, 30))
    assert field in [f for f, _ in errors]


def test_recurring_every_quarter_within_the_service_period():
    terms = PaymentTerms("recurring", 30, interval="quarter", first_invoice_date=dt.date(2027, 1, 31))
    planned = schedule(terms, end=dt.date(2027, 12, 31))
    assert [p.invoice_date for p in planned] == [dt.date(2027, 1, 31), dt.date(2027, 4, 30), dt.date(2027, 7, 31),
                                                 dt.date(2027, 10, 31)]
    assert all(p.net_amount == D("3000.00") and p.kind == "recurring" for p in planned)
    assert (planned[0].period_start, planned[0].period_end) == (dt.date(2027, 1, 31), dt.date(2027, 4, 29))
    assert planned[-1].period_end == dt.date(2027, 12, 31)
    monthly = schedule(PaymentTerms("recurring", interval="month", first_invoice_date=dt.date(2027, 1, 1)))
    assert len(monthly) == 6
    errors = validate_terms(PaymentTerms("recurring", interval="week", first_invoice_date=dt.date(2026, 1, 1)),
                            total=D(1), currency="EUR", service_start=dt.date(2027, 1, 1),
                            service_end=dt.date(2027, 2, 1))
    assert [f for f, _ in errors] == ["payment.interval", "payment.first_invoice_date"]


def test_advance_is_due_before_the_service_starts_after_completion_after_it_ends():
    [advance] = schedule(PaymentTerms("advance", 60))
    assert (advance.invoice_date, advance.due_date, advance.net_amount) == (TODAY, dt.date(2026, 12, 31), D("3000.00"))
    [after] = schedule(PaymentTerms("after_completion", 14, invoice_date=dt.date(2027, 7, 1)))
    assert (after.invoice_date, after.due_date) == (dt.date(2027, 7, 1), dt.date(2027, 7, 15))
    errors = validate_terms(PaymentTerms("after_completion", invoice_date=dt.date(2027, 6, 29)), total=D(1),
                            currency="EUR", service_start=dt.date(2027, 1, 1), service_end=dt.date(2027, 6, 30))
    assert errors == [("payment.invoice_date", "must be on or after the end of the service period")]


def test_minimum_fee_threshold_and_flags():
    assert MinimumFeeRule().threshold_eur == D("18.69")
    order = draft(lines=[line("hour", "18.68"), line("day", "149.52"), line("day", "149.60"), line("lump_sum", "1")])
    flags = minimum_fee_flags(order, exchange_rate_eur=D(1), rule=MinimumFeeRule())
    # 149.52 per day is 18.69 per hour: exactly the threshold, not below it
    assert [(f.figures["line"], f.figures["hourly_fee_eur"]) for f in flags] == [(0, "18.68")]
    usd = draft(currency="USD", lines=[line("hour", "20.00")])
    [flag] = minimum_fee_flags(usd, exchange_rate_eur=D("0.92"), rule=MinimumFeeRule())
    assert flag.figures["hourly_fee_eur"] == "18.40" and flag.figures["threshold_eur"] == "18.69"
    assert minimum_fee_flags(usd, exchange_rate_eur=D("0.95"), rule=MinimumFeeRule()) == ()


def line(unit="day", price="640.00", qty="2"):
    return {"description": "Work", "quantity": qty, "unit": unit, "unit_price": price}


CLIENT = model.ClientRef(uuid.uuid4(), "ACME", "company", "DE136695976", "DE", "de", "ok")


def draft(client=CLIENT, currency="EUR", lines=None, **fields):
    base = {
        "contact_person": {"name": "Erika", "email": "erika@acme.example"}, "currency": currency,
        "lines": [line()] if lines is None else lines, "sector": "design", "place_of_service": "DE",
        "project_name": "Relaunch",
        "description": "Website relaunch", "service_start": dt.date(2027, 1, 1), "service_end": dt.date(2027, 1, 31),
        "confirmation": model.Confirmation("send", offer_valid_until=dt.date(2026, 12, 15)),
        "payment": PaymentTerms("after_completion", 14, invoice_date=dt.date(2027, 2, 1)),
    } | fields
    return model.build_draft(order_id=uuid.uuid4(), member_id="m1", client=client, client_id=client.id, fields=base,
                             now=NOW)


def submitted(order=None):
    return model.submit(order or draft(), today=TODAY, exchange_rate_eur=D(1), rejection=None, flags=())


def in_status(status: str) -> model.Order:
    o = draft()
    if status == "draft":
        return o
    o = submitted(o)
    if status == "smart_review":
        return o
    if status == "rejected":
        return model.reject(o, by="advisor", reason="no")
    o = model.approve(o, today=TODAY)
    if status == "client_confirmation":
        return o
    o = model.confirm(o, today=TODAY)
    if status == "active":
        return o
    if status == "completed":
        o = model.record_issued_invoice(o, uuid.uuid4(), "2027-000001")
        return model.complete(o, today=dt.date(2027, 2, 2))
    o = model.request_cancellation(o, "client withdrew")
    if status == "cancellation_requested":
        return o
    return model.decide_cancellation(o, approve=True)


ACTIONS = {
    "edit": lambda o: model.edit(o, draft()),
    "submit": submitted,
    "approve": lambda o: model.approve(o, today=TODAY),
    "reject": lambda o: model.reject(o, by="advisor", reason="no"),
    "adjust": lambda o: model.adjust(o, {"project_name": "Relaunch 2027"})[0],
    "confirm": lambda o: model.confirm(o, today=TODAY),
    "client_reject": lambda o: model.reject(o, by="client", reason="too expensive", action="client_reject"),
    "request_changes": lambda o: model.request_changes(o, "fewer days please"),
    "warn_expiry": model.warn_expiry,
    "expire": model.expire,
    "request_cancellation": lambda o: model.request_cancellation(o, "client withdrew"),
    "approve_cancellation": lambda o: model.decide_cancellation(o, approve=True),
    "decline_cancellation": lambda o: model.decide_cancellation(o, approve=False),
    "complete": lambda o: model.complete(model.record_issued_invoice(o, uuid.uuid4(), "N1"), today=dt.date(2027, 2, 2)),
}
EXPECTED = {
    "edit": "draft", "submit": "smart_review", "approve": "client_confirmation", "reject": "rejected",
    "adjust": "smart_review", "confirm": "active", "client_reject": "rejected", "request_changes": "draft",
    "warn_expiry": "client_confirmation", "expire": "rejected", "request_cancellation": "cancellation_requested",
    "approve_cancellation": "cancelled", "decline_cancellation": "active", "complete": "completed",
}


@pytest.mark.parametrize("status", model.STATUSES)
@pytest.mark.parametrize("action", sorted(ACTIONS))
def test_state_machine(status, action):
    order = in_status(status)
    assert order.status == status
    if status in model.TRANSITIONS[action]:
        after = ACTIONS[action](order)
        assert after.status == EXPECTED[action]
        assert after.version > order.version
    else:
        with pytest.raises(Conflict) as e:
            ACTIONS[action](order)
        assert e.value.current_status == status


def test_skipped_confirmation_activates_on_approval_with_its_schedule():
    o = submitted(draft(confirmation=model.Confirmation("skip", skip_reason="framework contract",
                                                        separate_agreement=True)))
    active = model.approve(o, today=TODAY)
    assert active.status == "active" and active.activated_on == TODAY and len(active.schedule) == 1
    assert active.payment_guarantee is False, "after completion never has the guarantee"


def test_submission_requires_every_field_and_a_future_offer():
    bare = model.build_draft(order_id=uuid.uuid4(), member_id="m1", client=CLIENT, client_id=CLIENT.id, now=NOW,
                             fields={"contact_person": {"name": "E", "email": "e@x.example"}, "lines": [line()]})
    with pytest.raises(InvalidInput) as e:
        submitted(bare)
    assert {f for f, _ in e.value.errors} == {"sector", "place_of_service", "project_name", "description",
                                              "service_period", "confirmation", "payment"}
    stale = draft(confirmation=model.Confirmation("send", offer_valid_until=dt.date(2026, 11, 21)))
    with pytest.raises(InvalidInput) as e:
        submitted(stale)
    assert e.value.errors[0][0] == "confirmation.offer_valid_until"


@pytest.mark.parametrize("fields, field", [
    ({"lines": []}, "lines"),
    ({"lines": [line(price="-1")]}, "lines.0.unit_price"),
    ({"lines": [line(qty="abc")]}, "lines.0.quantity"),
    ({"lines": [line(unit="parsec")]}, "lines.0.unit"),
    ({"currency": "JPY", "lines": [line(price="100.50")]}, "lines.0.unit_price"),
    ({"currency": "XYZ"}, "currency"),
    ({"sector": "astrology"}, "sector"),
    ({"place_of_service": "MARS"}, "place_of_service"),
    ({"service_start": dt.date(2027, 2, 1)}, "service_period.end"),
    ({"confirmation": model.Confirmation("skip")}, "confirmation.skip_reason"),
    ({"confirmation": model.Confirmation("send")}, "confirmation.offer_valid_until"),
    ({"contact_person": {"name": "E", "email": "nope"}}, "contact_person.email"),
])
def test_bad_drafts_name_the_field(fields, field):
    with pytest.raises(InvalidInput) as e:
        draft(**fields)
    assert field in [f for f, _ in e.value.errors]


def test_automatic_checks():
    assert rejection_for(draft()) is None
    blocked = replace(CLIENT, standing="blocked", standing_reason="insolvency")
    assert "insolvency" in rejection_for(draft(client=blocked)).reason
    advance_only = replace(CLIENT, standing="advance_payment_only")
    assert "advance payment" in rejection_for(draft(client=advance_only)).reason
    assert rejection_for(draft(client=advance_only, payment=PaymentTerms("advance"))) is None
    assert "cannot process" in rejection_for(draft(sector="crafts")).reason
    rejected = model.submit(draft(sector="crafts"), today=TODAY, exchange_rate_eur=D(1),
                            rejection=rejection_for(draft(sector="crafts")), flags=())
    assert rejected.status == "rejected" and rejected.rejection.by == "automatic_check"


def test_adjustments_touch_texts_only_and_are_listed():
    o = submitted()
    adjusted, diff = model.adjust(o, {"project_name": "Relaunch 2027", "line_descriptions": {"0": "Design work"}})
    assert diff == [{"field": "project_name", "before": "Relaunch", "after": "Relaunch 2027"},
                    {"field": "lines.0.description", "before": "Work", "after": "Design work"}]
    assert adjusted.net_total == o.net_total
    with pytest.raises(InvalidInput) as e:
        model.adjust(o, {"lines": [], "currency": "USD"})
    assert {f for f, _ in e.value.errors} == {"lines", "currency"}


def test_totals_with_vat_and_completion_rules():
    o = draft(lines=[line("day", "640.00", "2"), line("hour", "75.35", "3.5")])
    assert (o.net_total, o.vat_amount, o.gross_total) == (D("1543.73"), D("293.31"), D("1837.04"))
    active = model.confirm(model.approve(submitted(o), today=TODAY), today=TODAY)
    with pytest.raises(Conflict, match="runs until"):
        model.complete(active, today=dt.date(2027, 1, 31))
    with pytest.raises(Conflict, match="0 of 1"):
        model.complete(active, today=dt.date(2027, 2, 5))


# -- bounds: dates whose derived dates overflow, totals, documents --------------------------------

@pytest.mark.parametrize("terms, start, end, field", [
    # the due date (invoice date + 14 days) is past year 9999
    (PaymentTerms("after_completion", 14, invoice_date=dt.date(9999, 12, 25)), dt.date(9999, 12, 1),
     dt.date(9999, 12, 20), "payment.invoice_date"),
    # an advance is due the day before the service starts: before year 1
    (PaymentTerms("advance", 14), dt.date(1, 1, 1), dt.date(2027, 1, 31), "service_period.start"),
    # the recurring invoices' next date is in year 10000
    (PaymentTerms("recurring", 14, interval="year", first_invoice_date=dt.date(9999, 6, 1)), dt.date(9999, 1, 1),
     dt.date(9999, 12, 31), "payment.first_invoice_date"),
    (PaymentTerms("installments", 120, installments=(Installment(dt.date(9999, 12, 31), percentage=D(100)),)),
     dt.date(2027, 1, 1), dt.date(2027, 6, 30), "payment.installments.0.date"),
])
def test_dates_whose_derived_dates_overflow_are_refused_by_the_schedule_not_crashed_on(terms, start, end, field):
    with pytest.raises(InvalidInput) as e:
        schedule(terms, start=start, end=end)
    assert field in [f for f, _ in e.value.errors]
    assert field in [f for f, _ in validate_terms(terms, total=D("3000.00"), currency="EUR", service_start=start,
                                                   service_end=end)]


def test_a_stored_order_with_dates_near_year_9999_is_refused_on_approval_not_crashed_on():
    # as drafts were stored before dates were bounded at entry
    valid_forever = replace(submitted(),
                            confirmation=model.Confirmation("send", offer_valid_until=dt.date(9999, 12, 31)))
    with pytest.raises(InvalidInput) as e:
        model.approve(valid_forever, today=TODAY)
    assert [f for f, _ in e.value.errors] == ["confirmation.offer_valid_until"]
    late = replace(submitted(), confirmation=model.Confirmation("skip", skip_reason="signed"),
                   payment=PaymentTerms("after_completion", 14, invoice_date=dt.date(9999, 12, 30)))
    with pytest.raises(InvalidInput) as e:
        model.approve(late, today=TODAY)
    assert [f for f, _ in e.value.errors] == ["payment.invoice_date"]


def test_drafts_refuse_dates_outside_the_business_range_and_totals_above_the_maximum():
    with pytest.raises(InvalidInput) as e:
        draft(service_start=dt.date(1, 1, 1), confirmation=model.Confirmation("send", dt.date(9999, 12, 31)))
    assert {f for f, _ in e.value.errors} == {"service_period.start", "confirmation.offer_valid_until"}
    # each line may be the maximum amount; the order's total may not, net or with its 19 % VAT
    with pytest.raises(InvalidInput, match=r"net total 1999999999\.98 EUR"):
        draft(lines=[line("lump_sum", "999999999.99", "1"), line("lump_sum", "999999999.99", "1")])
    with pytest.raises(InvalidInput, match=r"with VAT 1071000000\.00 EUR") as e:
        draft(lines=[line("lump_sum", "900000000.00", "1")])
    assert [f for f, _ in e.value.errors] == ["lines"]
    exempt = draft(sector="teaching", lines=[line("lump_sum", "900000000.00", "1")])
    assert exempt.gross_total == D("900000000.00")
    # at most the currency's decimals, even when the value would round to them
    with pytest.raises(InvalidInput) as e:
        draft(currency="JPY", lines=[line("day", "1000.0")])
    assert [f for f, _ in e.value.errors] == ["lines.0.unit_price"]
    # exponent notation is stored (and shown on invoices) as plain numbers
    plain = draft(lines=[line("day", "1E+3", "1E+1")], payment=PaymentTerms("installments", installments=(
        Installment(dt.date(2027, 1, 15), amount=D("2E+3")), Installment(dt.date(2027, 1, 31), amount=D("8E+3")))))
    assert [str(v) for v in (plain.lines[0].quantity, plain.lines[0].unit_price, plain.payment.installments[0].amount,
                             plain.net_total)] == ["10", "1000", "2000", "10000.00"]


def ole2(stream: str) -> bytes:
    """An OLE2 header and one directory sector whose second entry is `stream` (as Office writes it)."""
    def entry(name: str) -> bytes:
        encoded = name.encode("utf-16-le") + b"\x00\x00"
        return (encoded.ljust(64, b"\x00") + len(encoded).to_bytes(2, "little")).ljust(128, b"\x00")
    return (attachments.OLE2 + bytes(504)) + entry("Root Entry") + entry(stream) + bytes(256)


def archive(*names: str, mimetype: str | None = None, compressed: bool = False) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED if compressed else zipfile.ZIP_STORED) as z:
        if mimetype is not None:
            z.writestr("mimetype", mimetype)
        for name in names:
            z.writestr(name, "<x/>")
    return buffer.getvalue()


@pytest.mark.parametrize("content, media_type", [
    (b"%PDF-1.7\n%%EOF", "application/pdf"),
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "image/png"),
    (b"\xff\xd8\xff\xe0\x00\x10JFIF\x00", "image/jpeg"),
    (ole2("WordDocument"), "application/msword"),
    (ole2("Workbook"), "application/vnd.ms-excel"),
    (ole2("PowerPoint Document"), "application/vnd.ms-powerpoint"),
    (archive("[Content_Types].xml", "word/document.xml"),
     "application/vnd.openxmlformats-officedocument.wordprocessingml.document"),
    (archive("[Content_Types].xml", "xl/workbook.xml"),
     "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
    (archive("[Content_Types].xml", "ppt/presentation.xml"),
     "application/vnd.openxmlformats-officedocument.presentationml.presentation"),
    (archive("content.xml", mimetype="application/vnd.oasis.opendocument.text"),
     "application/vnd.oasis.opendocument.text"),
    (archive("content.xml", mimetype="application/vnd.oasis.opendocument.spreadsheet"),
     "application/vnd.oasis.opendocument.spreadsheet"),
    # not allowed, whatever they are called
    (archive("content.xml", mimetype="application/vnd.oasis.opendocument.graphics"), None),
    (archive("evil.exe"), None),
    (b"PK\x03\x04 a broken archive", None),
    (ole2("Something else"), None),
    (attachments.OLE2 + bytes(504) + "WordDocument".encode("utf-16-le") + bytes(200), None),  # text, not an entry
    (b"MZ\x90\x00\x03", None),
    (b"GIF89a", None),
    (b"<html><script>alert(1)</script>", None),
])
def test_documents_are_recognised_by_their_bytes(content, media_type):
    assert attachments.sniff(content) == media_type


def test_damaged_archives_are_no_document_and_never_an_error():
    # corrupt compressed data and encrypted members raised zlib.error and RuntimeError (a 500)
    rnd = random.Random(17)
    odt = archive("content.xml", mimetype="application/vnd.oasis.opendocument.text", compressed=True)
    docx = archive("[Content_Types].xml", "word/document.xml", compressed=True)
    for base in (odt, docx):
        for _ in range(1500):
            damaged = bytearray(base)
            for _ in range(rnd.randint(1, 8)):
                damaged[rnd.randrange(len(damaged))] = rnd.randrange(256)
            assert attachments.sniff(bytes(damaged)) in (None, *attachments.ALLOWED_MEDIA_TYPES)
    encrypted = bytearray(odt)
    encrypted[6] |= 1  # the general-purpose flag of the first local header (mimetype): encrypted
    central = bytes(encrypted).index(b"PK\x01\x02")
    encrypted[central + 8] |= 1  # and of its central directory entry
    assert attachments.sniff(bytes(encrypted)) is None


@pytest.mark.parametrize("sent, stored", [
    ("Angebot.pdf", "Angebot.pdf"),
    ("C:\\Users\\erika\\Angebot.pdf", "Angebot.pdf"),
    ("../../etc/Angebot.pdf", "Angebot.pdf"),
    ("Übersicht 見積書 ✓.pdf", "Übersicht 見積書 ✓.pdf"),
    ("Rechnung\u202efdp.exe", "Rechnungfdp.exe"),  # the bidi override that shows it as "exe.pdf"
    ("a\x00b\r\n\x1bc.pdf", "ab c.pdf"),
    ("  name  with\tspaces .pdf ", "name with spaces .pdf"),
    ("Cafe\u0301.pdf", "Café.pdf"),  # NFC
    ("x" * 300 + ".pdf", "x" * 196 + ".pdf"),
])
def test_file_names_are_sanitized_but_keep_any_script(sent, stored):
    assert attachments.sanitize_filename(sent) == stored


@pytest.mark.parametrize("name, declared, content, field", [
    ("offer.pdf", "application/pdf", b"", "file"),
    ("offer.pdf", "application/pdf", b"%PDF-1.7" + bytes(2000), "file"),  # above max_bytes
    ("offer.pdf", "application/pdf", b"MZ\x90\x00", "file"),
    ("offer.pdf", "application/pdf", b"\x89PNG\r\n\x1a\n", "file.content_type"),
    ("offer.png", "application/pdf", b"%PDF-1.7", "file.filename"),
    ("offer", "application/pdf", b"%PDF-1.7", "file.filename"),
    ("/", "application/pdf", b"%PDF-1.7", "file.filename"),
    (".pdf", "application/pdf", b"%PDF-1.7", "file.filename"),
])
def test_a_document_whose_content_type_or_name_disagree_is_refused_naming_the_field(name, declared, content, field):
    with pytest.raises(InvalidInput) as e:
        attachments.check_document(filename=name, declared_type=declared, content=content, max_bytes=1000)
    assert field in [f for f, _ in e.value.errors]


def test_a_document_undeclared_or_declared_by_an_alias_takes_its_type_from_its_content():
    for declared in ("", "application/octet-stream", "image/jpg", "IMAGE/JPEG; charset=binary"):
        checked = attachments.check_document(filename="Foto.JPG", declared_type=declared,
                                             content=b"\xff\xd8\xff\xe0\x00\x10JFIF", max_bytes=1000)
        assert checked == attachments.CheckedDocument("Foto.JPG", "image/jpeg")


def test_catalogue_vat_rules_follow_the_ustg():
    """Only the grant of copyrights is reduced (§ 12 Abs. 2 Nr. 7c UStG), only certified teaching
    exempt (§ 4 Nr. 21 UStG); everything else the cooperative takes is at the standard rate."""
    rules = {code: s.vat_rule for code, s in SECTORS.items() if s.processable}
    assert rules == {
        "design": "standard", "software": "standard", "consulting": "standard", "translation": "standard",
        "photography": "standard", "event_technology": "standard", "moderation": "standard",
        "copyright_licensing": "reduced", "journalism": "reduced",
        "teaching": "exempt", "teaching_uncertified": "standard",
    }
    assert {c for c, s in SECTORS.items() if not s.processable} == {"crafts", "sale_of_goods", "licensed_activity"}


def test_submission_stores_the_exchange_rate_and_its_day():
    order = model.submit(draft(), today=TODAY, exchange_rate_eur=D("0.92"), rejection=None, flags=())
    assert (order.exchange_rate_eur, order.exchange_rate_date) == (D("0.92"), dt.date(2026, 11, 22))


def test_installment_plan_shows_each_installments_amount_and_adds_up_to_the_order():
    """What the confirmation page shows beside each share: 30 % of 4.115,00 net is 1.234,50 (234,56 VAT at 19 %);
    the final 40 % takes the rest, 1.646,00 net and the VAT the earlier ones left (781,85 - 2 x 234,56)."""
    terms = PaymentTerms("installments", 14, installments=(
        Installment(dt.date(2027, 1, 15), percentage=D(30)), Installment(dt.date(2027, 1, 20), percentage=D(30)),
        Installment(dt.date(2027, 1, 31), percentage=D(40))))
    order = draft(lines=[line(qty="2.5", price="1646.00")], payment=terms)
    plan = order.installment_plan()
    assert [(s.net, s.vat, s.gross) for s in plan] == [
        (D("1234.50"), D("234.56"), D("1469.06")), (D("1234.50"), D("234.56"), D("1469.06")),
        (D("1646.00"), D("312.73"), D("1958.73"))]
    assert [s.installment.percentage for s in plan] == [D(30), D(30), D(40)]
    assert sum(s.gross for s in plan if s.gross) == D("4896.85")
    # the page shows what the schedule will bill
    planned = compute_schedule(terms, order.lines, currency="EUR", service_start=order.service_start,
                               service_end=order.service_end, activated_on=TODAY)
    assert [p.net_amount for p in planned] == [s.net for s in plan]


def test_installment_plan_by_amount_and_without_known_vat():
    terms = PaymentTerms("installments", 14, installments=(
        Installment(dt.date(2027, 1, 15), amount=D("1000.00")), Installment(dt.date(2027, 1, 31), amount=D("280.00"))))
    order = draft(payment=terms, sector=None)
    assert [(s.net, s.vat, s.gross) for s in order.installment_plan()] == [(D("1000.00"), None, None),
                                                                           (D("280.00"), None, None)]
    assert draft().installment_plan() == ()


def test_issued_invoices_are_kept_in_the_order_of_their_numbers_whatever_order_they_arrive_in():
    """Invoicing keys each invoice.issued event by the invoice, so an order's invoices can arrive
    in any order; the order lists them by number (part by part: 999999 before 1000000)."""
    numbers = ["2026-000003", "2027-000001", "2027-000002", "2027-000010", "2027-999999", "2027-1000000"]
    for seed in range(5):
        arriving = numbers[:]
        random.Random(seed).shuffle(arriving)
        o = in_status("active")
        for n in arriving:
            o = model.record_issued_invoice(o, uuid.uuid4(), n, Decimal("10.00"))
        assert [i.number for i in o.issued_invoices] == numbers, arriving
