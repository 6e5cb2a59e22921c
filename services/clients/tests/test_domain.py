"""The clients domain alone: identifiers, validation, duplicates, standing and the debt rule."""
import datetime as dt
import uuid
from dataclasses import replace
from decimal import Decimal

import pytest

from kontor.clock import BERLIN
from kontor.errors import Forbidden, InvalidInput
from kontor_clients.domain import model
from kontor_clients.domain import receivables as ledger
from kontor_clients.domain.identifiers import (
    leitweg_id_error,
    normalise_vat_id,
    search_key,
    search_terms,
    vat_id_error,
)

pytestmark = pytest.mark.unit
NOW = dt.datetime(2026, 11, 22, 9, 0, tzinfo=dt.UTC)


@pytest.mark.parametrize("vat_id, country", [
    ("DE136695976", "DE"), ("DE811569869", "DE"), ("ATU13585627", "AT"), ("FR40303265045", "FR"),
    ("NL004495445B01", "NL"), ("EL094259216", "GR"), ("SE556188840401", "SE"), ("ESB58378431", "ES"),
    ("IE6388047V", "IE"), ("PL5260250274", "PL"), ("DE136695976", "AT"),  # a German VAT id at an Austrian address
    ("CHE-116.281.710 MWST", "CH"), ("123456789", "US"),
])
def test_valid_vat_ids(vat_id, country):
    assert vat_id_error(normalise_vat_id(vat_id), country) is None


@pytest.mark.parametrize("vat_id, country, problem", [
    ("DE136695977", "DE", "check digit"),
    ("DE13669597", "DE", "format"),
    ("ATU1358562", "AT", "format"),
    ("NL004495445C01", "NL", "format"),
    ("GR094259216", "GR", "prefix, e.g. EL"),  # Greece's VAT prefix is EL
    ("136695976", "DE", "prefix, e.g. DE"),
    ("SE556188840402", "SE", "format"),
    ("!!", "US", "plausible"),
])
def test_invalid_vat_ids(vat_id, country, problem):
    assert problem in vat_id_error(normalise_vat_id(vat_id), country)


def test_vat_ids_are_normalised():
    assert normalise_vat_id("de 136.695-976") == "DE136695976"


@pytest.mark.parametrize("leitweg_id, problem", [
    ("991-33333TEST-33", None),
    ("04011000-1234512345-06", None),
    ("991-33333TEST-34", "check digits"),
    ("04011000-1234512345-6", "is not a Leitweg-ID"),
    ("1-33333-33", "is not a Leitweg-ID"),  # the coarse address has at least 2 digits
    ("991_33333-33", "is not a Leitweg-ID"),
])
def test_leitweg_ids(leitweg_id, problem):
    error = leitweg_id_error(leitweg_id)
    assert (error is None) if problem is None else (problem in error)


def test_search_key_folds_case_and_accents():
    assert search_key("  Müller & SÖHNE  Straße ") == "muller & sohne strasse"
    assert search_key("Ćevapi Łódź") == "cevapi lodz"
    assert search_terms("ACME Werkstatt GmbH") == ["acme werkstatt gmbh", "werkstatt gmbh", "gmbh"]


ADDRESS = model.Address("Hauptstraße 1", "10115", "Berlin", "DE")


def register(**overrides):
    details = dict(kind="company", name="ACME GmbH", address=ADDRESS, vat_id=None, leitweg_id=None,
                   invoice_email=None, language="de") | overrides
    return model.register(client_id=uuid.uuid4(), now=NOW, **details)


@pytest.mark.parametrize("overrides, field", [
    ({"address": model.Address("Hauptstraße 1", "1011", "Berlin", "DE")}, "address.postal_code"),
    ({"address": model.Address("Hauptstraße 1", "10115", "Berlin", "XX")}, "address.country"),
    ({"address": model.Address("", "10115", "Berlin", "DE")}, "address.street"),
    ({"name": "  "}, "name"),
    ({"vat_id": "DE136695977"}, "vat_id"),
    ({"kind": "person", "vat_id": "DE136695976"}, "vat_id"),
    ({"leitweg_id": "991-33333TEST-33"}, "leitweg_id"),  # not a public body
    ({"kind": "public_body", "invoice_email": "e@bund.example"}, "leitweg_id"),  # a German one needs it
    ({"kind": "public_body", "leitweg_id": "991-33333TEST-33"}, "invoice_email"),
    ({"kind": "public_body", "leitweg_id": "991-33333TEST-34", "invoice_email": "e@bund.example"}, "leitweg_id"),
    ({"invoice_email": "rechnung@@acme"}, "invoice_email"),
    ({"invoice_email": "a..b@acme.example"}, "invoice_email"),
    ({"invoice_email": "a\u0015b@acme.example"}, "invoice_email"),
    ({"language": "fr"}, "language"),
    ({"name": "ACME\u0015 GmbH"}, "name"),
    ({"name": "\u202eHbmG EMCA"}, "name"),
    ({"name": "\u0301\u0301"}, "name"),
    ({"name": "\ufdfa" * 60}, "name"),
    ({"address": model.Address("Hauptstraße\u0007 1", "10115", "Berlin", "DE")}, "address.street"),
    ({"address": model.Address("Hauptstraße 1", "\u0661\u0660\u0661\u0661\u0665", "Berlin", "DE")},
     "address.postal_code"),
    ({"vat_id": "DE\u0661\u0663\u0666\u0666\u0669\u0665\u0669\u0667\u0666"}, "vat_id"),
    ({"address": model.Address("100 Congress Ave", "78701", "Austin", "US")}, "address.subdivision"),  # required
    ({"address": model.Address("100 Congress Ave", "78701", "Austin", "US", "XX")}, "address.subdivision"),
    ({"address": model.Address("100 Congress Ave", "78701", "Austin", "US", "ON")}, "address.subdivision"),
    ({"address": model.Address("1 Front St W", "M5V 3L9", "Toronto", "CA")}, "address.subdivision"),
    ({"address": model.Address("1 Front St W", "M5V 3L9", "Toronto", "CA", "TX")}, "address.subdivision"),
    ({"address": model.Address("1 Front St W", "M5V", "Toronto", "CA", "ON")}, "address.postal_code"),
    ({"address": model.Address("1 George St", "2000", "Sydney", "AU")}, "address.subdivision"),
    ({"address": model.Address("1 George St", "2000", "Sydney", "AU", "SYD")}, "address.subdivision"),
    ({"address": model.Address("1 George St", "200", "Sydney", "AU", "NSW")}, "address.postal_code"),
    ({"address": model.Address("Marktplatz 2", "80331", "München", "DE", "BAYERN")}, "address.subdivision"),
    ({"address": model.Address("Marktplatz 2", "80331", "München", "DE", "B\u0007")}, "address.subdivision"),
])
def test_bad_records_name_the_field(overrides, field):
    with pytest.raises(InvalidInput) as e:
        register(**overrides)
    assert field in [f for f, _ in e.value.errors], e.value.errors


def test_a_good_record_is_cleaned():
    c = register(name=" ACME   GmbH ", vat_id="de 136 695 976", invoice_email="Rechnung@ACME.Example",
                 address=model.Address("Hauptstraße 1", "10115", "Berlin", "de"))
    assert (c.name, c.vat_id, c.invoice_email, c.address.country) == \
        ("ACME GmbH", "DE136695976", "Rechnung@acme.example", "DE")
    body = register(kind="public_body", name="Bundesamt", leitweg_id="991-33333test-33", invoice_email="e@bund.example")
    assert body.leitweg_id == "991-33333TEST-33"


@pytest.mark.parametrize("address, subdivision", [
    (model.Address("100 Congress Ave", "78701", "Austin", "us", "tx"), "TX"),
    (model.Address("100 Congress Ave", "78701", "Austin", "US", "US-TX"), "TX"),
    (model.Address("1 Front St W", "M5V 3L9", "Toronto", "CA", "ON"), "ON"),
    (model.Address("1 George St", "2000", "Sydney", "AU", " nsw "), "NSW"),
    (model.Address("Marktplatz 2", "80331", "München", "DE", "DE-BY"), "BY"),  # optional elsewhere
    (model.Address("Marktplatz 2", "80331", "München", "DE"), None),
])
def test_subdivisions_are_the_iso_3166_2_code_part(address, subdivision):
    assert register(address=address).address.subdivision == subdivision


def test_a_client_from_before_subdivisions_keeps_its_address_until_it_is_changed():
    old = replace(register(address=model.Address("100 Congress Ave", "78701", "Austin", "US", "TX")),
                  address=model.Address("100 Congress Ave", "78701", "Austin", "US"))  # as stored before
    renamed, changed = model.update(old, {"language": "en"}, now=NOW)
    assert changed == ("language",) and renamed.address.subdivision is None
    with pytest.raises(InvalidInput) as e:
        model.update(old, {"address": model.Address("200 Main St", "78701", "Austin", "US")}, now=NOW)
    assert [f for f, _ in e.value.errors] == ["address.subdivision"]
    moved = model.update(old, {"address": model.Address("200 Main St", "78701", "Austin", "US", "TX")}, now=NOW)[0]
    assert model.differences(old, moved, ["address"])["address"] == {
        "before": {"street": "100 Congress Ave", "postal_code": "78701", "city": "Austin", "country": "US"},
        "after": {"street": "200 Main St", "postal_code": "78701", "city": "Austin", "country": "US",
                  "subdivision": "TX"}}


def test_changes_name_what_changed_and_refuse_removing_what_is_required():
    c = register(invoice_email="a@acme.example")
    updated, changed = model.update(c, {"invoice_email": "b@acme.example", "language": "de"}, now=NOW)
    assert changed == ("invoice_email",) and updated.version == c.version + 1
    assert model.differences(c, updated, changed) == {"invoice_email": {"before": "a@acme.example",
                                                                        "after": "b@acme.example"}}
    moved = model.update(c, {"address": model.Address("Marktplatz 2", "80331", "München", "DE")}, now=NOW)[0]
    assert model.differences(c, moved, ["address"])["address"]["before"] == {
        "street": "Hauptstraße 1", "postal_code": "10115", "city": "Berlin", "country": "DE"}
    for required in ("kind", "name", "address", "language", "zugferd"):
        with pytest.raises(InvalidInput) as e:
            model.update(c, {required: None}, now=NOW)
        assert [f for f, _ in e.value.errors] == [required]
    assert model.update(c, {"invoice_email": None}, now=NOW)[0].invoice_email is None


NOBODY = model.Ties()
OWN_ORDERS = model.Ties(members_with_orders=frozenset({"member-1"}))
OTHERS_ORDERS = model.Ties(members_with_orders=frozenset({"member-1", "member-2"}))
INVOICED = model.Ties(issued_invoices=1, members_with_orders=frozenset({"member-1"}))


@pytest.mark.parametrize("changed, ties, is_advisor, refused_because", [
    (("invoice_email",), NOBODY, False, None),
    (("invoice_email",), OWN_ORDERS, False, None),
    (("invoice_email",), OTHERS_ORDERS, False, "other members have orders"),
    (("invoice_email",), INVOICED, False, "invoices have already been issued"),
    (("name", "address"), model.Ties(issued_invoices=2, members_with_orders=frozenset({"member-3"})), False,
     "invoices have already been issued to it and other members have orders"),
    (("kind", "vat_id"), OTHERS_ORDERS, False, "other members"),
    (("leitweg_id",), INVOICED, False, "invoices"),
    (("language", "zugferd"), INVOICED, False, None),  # how documents look, not where or to whom they go
    (("invoice_email",), OTHERS_ORDERS, True, None),
    (("invoice_email", "name"), INVOICED, True, None),
])
def test_who_may_change_billing_data(changed, ties, is_advisor, refused_because):
    if refused_because is None:
        model.authorize_change(changed, ties, actor_id="member-1", is_advisor=is_advisor)
        return
    with pytest.raises(Forbidden) as e:
        model.authorize_change(changed, ties, actor_id="member-1", is_advisor=is_advisor)
    assert refused_because in str(e.value) and "only advisors" in str(e.value)
    assert all(f in str(e.value) for f in changed), "the answer names the fields"
    assert "member-2" not in str(e.value) and "member-3" not in str(e.value)


def test_duplicates_by_vat_id_or_name_and_postal_code():
    a = register(vat_id="DE136695976")
    assert model.duplicate_reason(register(name="Other", vat_id="DE136695976"), a) == "vat_id"
    assert model.duplicate_reason(register(name="acme gmbh"), a) == "name_and_postal_code"
    elsewhere = model.Address("Hauptstraße 1", "80331", "München", "DE")
    assert model.duplicate_reason(register(address=elsewhere), a) is None


def test_advisor_standing_needs_a_reason():
    c = register()
    with pytest.raises(InvalidInput) as e:
        model.set_standing(c, status="blocked", reason=" ", advisor_id="adv", now=NOW)
    assert [f for f, _ in e.value.errors] == ["reason"]
    blocked = model.set_standing(c, status="blocked", reason="fraud suspected", advisor_id="adv", now=NOW)
    assert blocked.standing == model.Standing("blocked", "fraud suspected", "advisor", NOW, "adv")
    assert blocked.version == c.version + 1
    assert model.set_standing(blocked, status="blocked", reason="fraud suspected", advisor_id="adv", now=NOW) is None


def test_add_months_clamps_to_the_month_end():
    assert ledger.add_months(dt.date(2026, 1, 15), 2) == dt.date(2026, 3, 15)
    assert ledger.add_months(dt.date(2025, 12, 31), 2) == dt.date(2026, 2, 28)
    assert ledger.add_months(dt.date(2027, 12, 31), 2) == dt.date(2028, 2, 29)
    assert ledger.add_months(dt.date(2026, 11, 30), 2) == dt.date(2027, 1, 30)


def invoice(client, due, amount="1190.00", number="2026-000001", **kw):
    return ledger.Receivable(invoice_id=uuid.uuid4(), client_id=client.id, number=number,
                             currency=kw.pop("currency", "EUR"), amount_due=Decimal(amount),
                             issue_date=due - dt.timedelta(days=14), due_date=due, **kw)


def test_an_invoice_due_at_the_end_of_the_calendar_never_overflows_the_debt_rule():
    c = register()
    late = invoice(c, dt.date(9999, 12, 15))
    assert late.restricts_after == dt.date.max and not late.restricts(dt.date(9999, 12, 31))
    assert ledger.debt_rule(c, [late], as_of=dt.date(9999, 12, 31), now=NOW) is None
    assert ledger.positions([late], dt.date(9999, 12, 31))[0].overdue_invoices == 1


def test_debt_rule_restricts_only_after_two_full_months():
    c = register()
    r = invoice(c, dt.date(2026, 1, 15))
    assert ledger.debt_rule(c, [r], as_of=dt.date(2026, 3, 15), now=NOW) is None, "exactly two months: not yet"
    restricted = ledger.debt_rule(c, [r], as_of=dt.date(2026, 3, 16), now=NOW)
    assert restricted.standing.status == "advance_payment_only" and restricted.standing.source == "debt_rule"
    assert "2026-000001" in restricted.standing.reason
    paid = ledger.mark_paid(r, paid_total=Decimal("1190.00"))
    lifted = ledger.debt_rule(restricted, [paid], as_of=dt.date(2026, 3, 16), now=NOW)
    assert lifted.standing.status == "ok" and lifted.standing.source == "debt_rule"
    assert ledger.debt_rule(lifted, [paid], as_of=dt.date(2026, 3, 16), now=NOW) is None


def test_partial_payment_keeps_the_restriction_cancellation_lifts_it():
    c = register()
    r = invoice(c, dt.date(2026, 1, 15))
    restricted = ledger.debt_rule(c, [r], as_of=dt.date(2026, 4, 1), now=NOW)
    part = ledger.record_payment(r, paid_total=Decimal("1000.00"))
    assert part.open_amount == Decimal("190.00")
    assert ledger.debt_rule(restricted, [part], as_of=dt.date(2026, 4, 1), now=NOW) is None
    cancelled = ledger.mark_cancelled(part, refund_due=Decimal("1000.00"))
    assert ledger.debt_rule(restricted, [cancelled], as_of=dt.date(2026, 4, 1), now=NOW).standing.status == "ok"


def test_advisor_standing_is_never_lifted_by_the_rule():
    c = register()
    blocked = model.set_standing(c, status="blocked", reason="dispute in court", advisor_id="adv", now=NOW)
    r = invoice(c, dt.date(2026, 1, 15))
    assert ledger.debt_rule(blocked, [r], as_of=dt.date(2026, 4, 1), now=NOW) is None, "blocked is stricter"
    paid = ledger.mark_paid(r, paid_total=Decimal("1190.00"))
    assert ledger.debt_rule(blocked, [paid], as_of=dt.date(2026, 4, 1), now=NOW) is None


def test_an_advisor_lift_holds_for_the_debt_known_then_not_for_later_debt():
    c = register()
    old = invoice(c, dt.date(2026, 1, 15), number="2026-000001")
    restricted = ledger.debt_rule(c, [old], as_of=dt.date(2026, 4, 1), now=NOW)
    lift_time = dt.datetime(2026, 4, 2, 10, 0, tzinfo=BERLIN)
    lifted = model.set_standing(restricted, status="ok", reason="payment plan agreed", advisor_id="adv", now=lift_time)
    assert ledger.debt_rule(lifted, [old], as_of=dt.date(2026, 5, 1), now=NOW) is None
    new = invoice(c, dt.date(2026, 3, 1), number="2026-000002")  # crosses the line on 2 May
    again = ledger.debt_rule(lifted, [old, new], as_of=dt.date(2026, 5, 2), now=NOW)
    assert again.standing.status == "advance_payment_only" and "2026-000002" in again.standing.reason


def test_positions_per_currency_with_the_oldest_overdue_invoice():
    c = register()
    items = [
        invoice(c, dt.date(2026, 3, 1), "100.00", "2026-000003"),
        invoice(c, dt.date(2026, 2, 1), "200.00", "2026-000002", paid_total=Decimal("50.00")),
        invoice(c, dt.date(2026, 5, 1), "300.00", "2026-000004"),
        invoice(c, dt.date(2026, 1, 1), "1000", "2026-000001", currency="JPY"),
        invoice(c, dt.date(2026, 1, 1), "80.00", "2026-000005", status="paid", paid_total=Decimal("100.00")),
    ]
    eur, jpy = ledger.positions(items, dt.date(2026, 4, 1))
    assert (eur.currency, eur.open_amount, eur.overdue_amount, eur.open_invoices, eur.overdue_invoices) == \
        ("EUR", Decimal("550.00"), Decimal("250.00"), 3, 2)
    assert eur.oldest_overdue.number == "2026-000002"
    assert eur.overpaid_amount == Decimal("20.00")
    assert (jpy.open_amount, jpy.oldest_overdue.number) == (Decimal("1000"), "2026-000001")


def test_the_debt_rule_decides_the_same_on_the_open_invoices_due_before_its_horizon_alone():
    """The ledger reads only open receivables due before `debt_rule_horizon(as_of)` per event;
    over month ends, partial payments, paid and cancelled invoices and every standing the
    rule can meet, that subset decides exactly as the client's whole ledger does."""
    import random

    rng = random.Random(20261202)
    c = register()
    advisor = model.set_standing(c, status="blocked", reason="call first", advisor_id="advisor-1",
                                 now=dt.datetime(2026, 2, 1, 9, tzinfo=BERLIN))
    by_rule = replace(c, standing=model.Standing(status="advance_payment_only", reason="debt", source="debt_rule",
                                                 since=NOW))
    days = [dt.date(2025, 12, 31) + dt.timedelta(days=d) for d in range(0, 120, 3)]
    compared = decided = 0
    for trial in range(400):
        items = []
        for n in range(rng.randint(0, 6)):
            r = invoice(c, rng.choice(days), number=f"2026-{trial:04d}{n:02d}")
            kind = rng.choice(("open", "open", "part", "paid", "cancelled"))
            if kind == "part":
                r = ledger.record_payment(r, paid_total=Decimal("100.00"))
            elif kind == "paid":
                r = ledger.mark_paid(r, paid_total=r.amount_due)
            elif kind == "cancelled":
                r = ledger.mark_cancelled(r, refund_due=Decimal(0))
            items.append(r)
        as_of = rng.choice(days) + dt.timedelta(days=rng.choice((0, 45, 61, 62, 90)))
        horizon = ledger.debt_rule_horizon(as_of)
        subset = [r for r in items if r.status == "open" and r.due_date < horizon]  # what the SQL selects
        for client in (c, by_rule, advisor):
            whole = ledger.debt_rule(client, items, as_of=as_of, now=NOW)
            part = ledger.debt_rule(client, subset, as_of=as_of, now=NOW)
            assert whole == part, (client.standing, as_of, items)
            compared += 1
            decided += whole is not None
    assert compared > 1000 and decided > 100, (compared, decided)  # the cases include real changes
