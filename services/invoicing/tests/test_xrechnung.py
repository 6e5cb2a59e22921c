"""Every kind of invoice the cooperative sends, rendered as X-Rechnung and checked by the
official rules (EN 16931 + XRechnung Schematron, CII XSD) from `../shared/xrechnung`."""
import datetime as dt
import uuid
from dataclasses import replace
from decimal import Decimal as D
from pathlib import Path

import pytest

from kontor_invoicing.adapters.documents import xrechnung
from kontor_invoicing.adapters.xrechnung_rules import XRechnungValidator
from kontor_invoicing.domain import model
from kontor_invoicing.settings import Seller

RULES = Path(__file__).resolve().parents[4] / "shared" / "xrechnung"
NOW = dt.datetime(2027, 1, 15, 9, tzinfo=dt.UTC)
DE_COMPANY = {"name": "ACME Werkstatt GmbH", "kind": "company", "vat_id": "DE811569869",
              "invoice_email": "rechnung@acme.example", "language": "de",
              "address": {"street": "Hauptstraße 1", "postal_code": "10115", "city": "Berlin", "country": "DE"}}


@pytest.fixture(scope="module")
def validator():
    if not RULES.exists():
        pytest.skip(f"official rules not found at {RULES}")
    return XRechnungValidator(RULES)


def line(desc="Design", qty="2", unit="day", price="640.00", cat="S", rate="19", currency="EUR"):
    net = (D(qty) * D(price)).quantize(D(1) if currency == "JPY" else D("0.01"))
    return model.Line(desc, D(qty), unit, D(price), net, cat, D(rate))


def invoice(lines=None, buyer=DE_COMPANY, currency="EUR", note=None, number="2027-000001", **kw) -> model.Invoice:
    draft = model.Invoice(
        id=uuid.uuid4(), order_id=uuid.uuid4(), member_id="m1", client_id=uuid.uuid4(), seq=1, kind="invoice",
        schedule_kind="after_completion", status="draft", currency=currency, lines=tuple(lines or [line()]),
        invoice_date=NOW.date(), due_in_days=14, created_at=NOW, project_name="Relaunch 2027",
        description="Redesign of the website", vat_note=note, service_period_start=dt.date(2027, 1, 1),
        service_period_end=dt.date(2027, 1, 14), contact_name="Erika Muster", contact_email="erika@acme.example",
        buyer=buyer, **kw)
    return model.issue(draft, number=number, issue_date=NOW.date())


EU = {**DE_COMPANY, "name": "Société Exemple SARL", "vat_id": "FR40303265045",
      "address": {"street": "1 rue de la Paix", "postal_code": "75002", "city": "Paris", "country": "FR"}}
CH = {**DE_COMPANY, "name": "Beispiel AG", "vat_id": "CHE-116.281.710 MWST",
      "address": {"street": "Bahnhofstrasse 1", "postal_code": "8001", "city": "Zürich", "country": "CH"}}
CITY = {**DE_COMPANY, "name": "Stadt Musterhausen", "kind": "public_body", "vat_id": None,
        "leitweg_id": "991-33333TEST-33", "invoice_email": "e-rechnung@musterhausen.example"}
US = {**DE_COMPANY, "name": "Example Inc.", "vat_id": None, "language": "en",
      "address": {"street": "1 Main St", "postal_code": "10001", "city": "New York", "country": "US"}}

CASES = {
    "19 % domestic": invoice(),
    "7 % reduced": invoice([line("Nutzungsrechte Text", "1", "lump_sum", "1200.00", rate="7")]),
    "exempt teaching": invoice([line("Workshop", "2", "day", "800.00", "E", "0")],
                               note="Steuerfrei nach § 4 Nr. 21 UStG"),
    "EU reverse charge": invoice([line(cat="AE", rate="0")], buyer=EU,
                                 note="Steuerschuldnerschaft des Leistungsempfängers"),
    "third-country company": invoice([line(cat="O", rate="0")], buyer=CH, note="Nicht im Inland steuerbar"),
    "public body with Leitweg-ID": invoice(buyer=CITY),
    "USD with EUR VAT": invoice([line(price="700.00", currency="USD")], buyer=US, currency="USD",
                                exchange_rate_eur=D("0.92")),
    "JPY": invoice([line("Consulting", "3", "day", "85000", currency="JPY")], currency="JPY",
                   exchange_rate_eur=D("0.0061")),
    "60 lines": invoice([line(f"Position {i}", "1.5", "hour", "85.35") for i in range(60)]),
}


def installments_and_final():
    first = invoice([line("Abschlag 1/3", "1", "lump_sum", "1404.00")], number="2027-000010")
    second = invoice([line("Abschlag 2/3", "1", "lump_sum", "1404.00")], number="2027-000011")
    final = invoice([line(), line("Implementation", "40", "hour", "85.00")], number="2027-000012",
                    prepaid_amount=first.gross_total + second.gross_total)
    return [first, second, replace(final, schedule_kind="final")]


@pytest.mark.parametrize("name", list(CASES))
def test_every_case_passes_the_official_rules(validator, name):
    report = validator.validate(xrechnung(CASES[name], Seller()))
    assert report.valid, [str(e) for e in report.errors]


def test_installments_final_and_cancellation_pass(validator):
    docs = installments_and_final()
    final = docs[-1]
    assert final.amount_due == final.gross_total - D("3341.52")
    _, storno = model.request_cancellation(final, cancellation_id=uuid.uuid4(), on=NOW.date(), reason="wrong",
                                           now=NOW)
    storno = model.number(storno, sequence=13)
    for inv in [*docs, storno]:
        xml = xrechnung(inv, Seller())
        report = validator.validate(xml)
        assert report.valid, (inv.number, [str(e) for e in report.errors])
    assert b"<ram:TypeCode>381</ram:TypeCode>" in xrechnung(storno, Seller())
    assert b"2027-000012" in xrechnung(storno, Seller()), "the cancellation refers to the original (BT-25)"


def test_a_broken_invoice_is_caught_with_its_rule_id(validator):
    no_phone = validator.validate(xrechnung(invoice(), Seller(phone="")))
    assert {e.rule_id for e in no_phone.errors} == {"BR-DE-6"}, "seller contact telephone"
    no_iban = validator.validate(xrechnung(invoice(), Seller(iban="")))
    assert {e.rule_id for e in no_iban.errors} == {"BR-DE-23-a"}, "credit transfer needs an IBAN"
    assert all(e.text for e in no_iban.errors)


def test_a_us_buyer_s_state_is_in_the_buyer_address(validator):
    texas = {**US, "address": {"street": "100 Congress Ave", "postal_code": "78701", "city": "Austin",
                               "country": "US", "subdivision": "TX"}}
    xml = xrechnung(invoice(buyer=texas), Seller())
    report = validator.validate(xml)
    assert report.valid, [str(e) for e in report.errors]
    buyer = xml.split(b"<ram:BuyerTradeParty>")[1].split(b"</ram:BuyerTradeParty>")[0]
    assert b"<ram:CityName>Austin</ram:CityName><ram:CountryID>US</ram:CountryID>" \
           b"<ram:CountrySubDivisionName>Texas</ram:CountrySubDivisionName>" \
           in buyer.replace(b"\n", b"").replace(b" ", b"")
    seller = xml.split(b"<ram:SellerTradeParty>")[1].split(b"</ram:SellerTradeParty>")[0]
    assert b"CountrySubDivisionName" not in seller
    assert b"CountrySubDivisionName" not in xrechnung(invoice(), Seller()), "none where the client has none"
