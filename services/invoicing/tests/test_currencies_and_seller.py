"""Issue 18, items 3, 4 and 7: invoices in other currencies (the VAT in EUR to the cent in the
language's format, the rate as the order stored it and dated; the API and the events carry both),
the seller as § 25a GenG wants a cooperative's letters to name it (legal form, seat, register court
and number, board, chair of the supervisory board, VAT id, tax number, bank) in the footer and the
same registration in the X-Rechnung, English labels on English invoices, the information block's
values aligned, and the same PDF metadata in a plain PDF and a ZUGFeRD hybrid. The PDFs are read
back (pypdf text, pypdfium2 glyph positions); every X-Rechnung is checked by the official rules."""
import datetime as dt
import io
import json
import re
import sys
import uuid
import xml.etree.ElementTree as ET
from decimal import Decimal
from pathlib import Path

import pypdfium2
import pytest
from pypdf import PdfReader

from kontor.clock import FixedClock
from kontor.contracts.clients import ClientRegisteredV1, ClientSnapshotV1, ClientStandingV1
from kontor.contracts.common import Actor, Address
from kontor.contracts.orders import (
    ContactPersonV1,
    OrderActivatedV1,
    OrderClientV1,
    OrderLineV1,
    OrderV1,
    PaymentTermsV1,
    PlannedInvoiceV1,
    VatV1,
)
from kontor.testing import eventually
from kontor.testing.kafka import publish_event, read_topic
from kontor.testing.services import auth, running_service
from kontor_invoicing.adapters.documents import xrechnung
from kontor_invoicing.adapters.pdf import InvoicePdf
from kontor_invoicing.domain import model
from kontor_invoicing.service_layer.services import published
from kontor_invoicing.settings import Seller
from kontor_invoicing.spec import SPEC

D = Decimal
NOW = dt.datetime(2026, 12, 1, 9, tzinfo=dt.UTC)
ADVISOR = auth("advisor-1", "advisor")
RULES = Path(__file__).resolve().parents[4] / "shared" / "xrechnung"
NS = {"ram": "urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100"}
NBSP = "\u00a0"
SELLER = Seller()
RENDERER = InvoicePdf(SELLER)
DE_BUYER = {"name": "ACME Werkstatt GmbH", "kind": "company", "vat_id": "DE811569869", "language": "de",
            "invoice_email": "rechnung@acme.example",
            "address": {"street": "Hauptstraße 1", "postal_code": "10115", "city": "Berlin", "country": "DE"}}
US_BUYER = {"name": "Example Inc.", "kind": "company", "vat_id": None, "language": "en",
            "invoice_email": "ap@example.com",
            "address": {"street": "1 Main St", "postal_code": "10001", "city": "New York", "country": "US",
                        "subdivision": "NY"}}


def official_validator():
    if not (RULES / "validate.py").exists():
        pytest.skip(f"official X-Rechnung rules not found at {RULES}")
    sys.path.insert(0, str(RULES))
    from validate import validate

    return validate


def issued(buyer: dict, currency: str, qty: str, price: str, *, rate: str | None = None,
           rate_date: dt.date | None = None, kind: str = "invoice") -> model.Invoice:
    net = (D(qty) * D(price)).quantize(D(1) if currency == "JPY" else D("0.01"))
    line = model.Line("Consulting", D(qty), "day", D(price), net, "S", D(19))
    draft = model.Invoice(
        id=uuid.uuid4(), order_id=uuid.uuid4(), member_id="m1", client_id=uuid.uuid4(), seq=1, kind=kind,
        schedule_kind="after_completion", status="draft", currency=currency, lines=(line,),
        invoice_date=dt.date(2027, 1, 15), due_in_days=14, created_at=NOW, project_name="Relaunch 2027",
        service_period_start=dt.date(2027, 1, 1), service_period_end=dt.date(2027, 9, 30),
        contact_name="Erika Muster", contact_email="erika@acme.example", buyer=buyer,
        exchange_rate_eur=D(rate) if rate else None, exchange_rate_date=rate_date)
    return model.issue(draft, number="2027-000042", issue_date=dt.date(2027, 1, 15))


def text_of(document: bytes) -> str:
    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(document)).pages)


def origins(document: bytes, *needles: str) -> list[float]:
    """Where each text starts on the first page: the x of its first glyph's origin (pdfium's loose box)."""
    page = pypdfium2.PdfDocument(document)[0].get_textpage()
    full = page.get_text_range()
    found = []
    for needle in needles:
        index = full.find(needle)
        assert index >= 0, f"{needle!r} not on the page"
        found.append(round(page.get_charbox(index, loose=True)[0], 1))
    return found


# -- foreign currencies ---------------------------------------------------------------------------

@pytest.mark.unit
def test_the_eur_vat_is_rounded_half_up_to_the_cent():
    # 9.50 USD VAT × 0.95 = 9.025 EUR: half up 9.03 (half even would give 9.02)
    usd = issued(US_BUYER, "USD", "1", "50.00", rate="0.95")
    assert (usd.tax_total, usd.tax_total_eur) == (D("9.50"), D("9.03"))
    assert issued(DE_BUYER, "EUR", "1", "50.00", rate="1").tax_total_eur is None, "only for other currencies"
    assert issued(US_BUYER, "USD", "1", "50.00").tax_total_eur is None, "none without a rate"


@pytest.mark.unit
def test_a_jpy_invoice_in_german_states_its_vat_in_eur_with_two_decimals_and_the_dated_rate():
    validate = official_validator()
    # 3 × 85,000 JPY = 255,000 JPY net, 48,450 JPY VAT; × 0.0061 = 295.545 EUR → 295.55
    inv = issued(DE_BUYER, "JPY", "3", "85000", rate="0.0061", rate_date=dt.date(2026, 11, 20))
    text = text_of(RENDERER.render(inv))
    assert "255.000 JPY" in text and "48.450 JPY" in text
    assert "Umsatzsteuer in EUR: 295,55 EUR (Kurs vom 20.11.2026: 1 JPY = 0,0061 EUR)" in text
    assert "295,5450" not in text and "0.0061" not in text, "no four decimals, no unlocalised rate"
    xml = xrechnung(inv, SELLER)
    assert b'<ram:TaxTotalAmount currencyID="EUR">295.55</ram:TaxTotalAmount>' in xml
    assert b"<ram:TaxCurrencyCode>EUR</ram:TaxCurrencyCode>" in xml
    assert validate(xml).valid, validate(xml)


@pytest.mark.unit
def test_a_usd_invoice_in_english_and_a_rate_without_a_date():
    validate = official_validator()
    # 2 × 700.00 USD = 1,400.00 USD net, 266.00 USD VAT; × 0.9225 = 245.385 EUR → 245.39
    inv = issued(US_BUYER, "USD", "2", "700.00", rate="0.9225", rate_date=dt.date(2026, 11, 20))
    text = text_of(RENDERER.render(inv))
    assert "1,400.00 USD" in text and "266.00 USD" in text and "1,666.00 USD" in text
    assert f"VAT in EUR: 245.39 EUR (rate of 20{NBSP}Nov{NBSP}2026: 1 USD = 0.9225 EUR)" in text
    xml = xrechnung(inv, SELLER)
    assert b'<ram:TaxTotalAmount currencyID="EUR">245.39</ram:TaxTotalAmount>' in xml
    assert validate(xml).valid, validate(xml)
    undated = issued(DE_BUYER, "USD", "2", "700.00", rate="0.9225")
    assert "Umsatzsteuer in EUR: 245,39 EUR (Kurs: 1 USD = 0,9225 EUR)" in text_of(RENDERER.render(undated))


@pytest.mark.unit
def test_the_eur_vat_of_a_cancellation_invoice_is_negative_in_its_pdf_and_positive_in_its_xml():
    validate = official_validator()
    original = issued(DE_BUYER, "USD", "2", "700.00", rate="0.9225", rate_date=dt.date(2026, 11, 20))
    _, storno = model.request_cancellation(original, cancellation_id=uuid.uuid4(), on=dt.date(2027, 1, 20),
                                           reason="wrong", now=NOW)
    storno = model.number(storno, sequence=43)
    assert "Umsatzsteuer in EUR: \u2212245,39 EUR" in text_of(RENDERER.render(storno))
    xml = xrechnung(storno, SELLER)
    assert b'<ram:TaxTotalAmount currencyID="EUR">245.39</ram:TaxTotalAmount>' in xml
    assert validate(xml).valid, validate(xml)


@pytest.mark.unit
def test_the_invoice_event_carries_the_rate_its_day_and_the_eur_vat():
    inv = issued(US_BUYER, "USD", "2", "700.00", rate="0.9225", rate_date=dt.date(2026, 11, 20))
    event = json.loads(published(inv).model_dump_json())
    assert (event["exchange_rate_eur"], event["exchange_rate_date"], event["tax_total_eur"]) == \
        ("0.9225", "2026-11-20", "245.39")
    eur = json.loads(published(issued(DE_BUYER, "EUR", "1", "50.00")).model_dump_json())
    assert (eur["exchange_rate_eur"], eur["exchange_rate_date"], eur["tax_total_eur"]) == (None, None, None)


# -- seller details, labels, layout, metadata -----------------------------------------------------

@pytest.mark.unit
def test_the_german_footer_names_what_25a_geng_asks_for():
    text = text_of(RENDERER.render(issued(DE_BUYER, "EUR", "2", "640.00")))
    for expected in ("Kontor eG, eingetragene Genossenschaft", "Sitz Berlin", "Amtsgericht Berlin-Charlottenburg",
                     "Genossenschaftsregister GnR 999 B", "Vorstand: Anna Beispiel, Jonas Muster",
                     "Aufsichtsratsvorsitz: Petra Probe", "USt-IdNr. DE136695976", "St.-Nr. 27/123/45678",
                     "Deutsche Kreditbank", "IBAN DE02120300000000202051", "BIC BYLADEM1001"):
        assert expected in text, expected


@pytest.mark.unit
def test_the_seller_comes_from_the_settings():
    seller = Seller(board=("Clara Neu",), supervisory_board_chair="Dora Alt", register_number="GnR 123 B",
                    register_court="Amtsgericht Potsdam", seat="Potsdam")
    document = InvoicePdf(seller).render(issued(DE_BUYER, "EUR", "2", "640.00"))
    text = text_of(document)
    assert "Vorstand: Clara Neu" in text and "Aufsichtsratsvorsitz: Dora Alt" in text and "Sitz Potsdam" in text
    assert "Amtsgericht Potsdam" in text and "GnR 123 B" in text and "Anna Beispiel" not in text
    root = ET.fromstring(xrechnung(issued(DE_BUYER, "EUR", "2", "640.00"), seller))  # noqa: S314 (our own XML)
    party = root.find(".//ram:SellerTradeParty", NS)
    assert party.findtext("ram:SpecifiedLegalOrganization/ram:ID", namespaces=NS) == "GnR 123 B"
    assert "Vorstand: Clara Neu" in party.findtext("ram:Description", namespaces=NS)


@pytest.mark.unit
def test_the_x_rechnung_carries_the_registration_the_letter_prints():
    validate = official_validator()
    for buyer in (DE_BUYER, US_BUYER):
        inv = issued(buyer, "EUR", "2", "640.00")
        text = text_of(RENDERER.render(inv))
        xml = xrechnung(inv, SELLER)
        assert validate(xml).valid, validate(xml)
        party = ET.fromstring(xml).find(".//ram:SellerTradeParty", NS)  # noqa: S314 (our own XML)
        register = party.findtext("ram:SpecifiedLegalOrganization/ram:ID", namespaces=NS)
        assert register == "GnR 999 B" and register in text, "BT-30: the register number of the letter's footer"
        assert party.findtext("ram:Description", namespaces=NS) == (
            "eingetragene Genossenschaft, Sitz Berlin; Amtsgericht Berlin-Charlottenburg, GnR 999 B; "
            "Vorstand: Anna Beispiel, Jonas Muster; Aufsichtsratsvorsitz: Petra Probe")  # BT-33
        assert {e.findtext("ram:ID", namespaces=NS) for e in party.findall("ram:SpecifiedTaxRegistration", NS)} == \
            {"DE136695976", "27/123/45678"}


@pytest.mark.unit
def test_an_english_invoice_has_english_labels_everywhere():
    text = text_of(RENDERER.render(issued(US_BUYER, "USD", "2", "700.00", rate="0.92",
                                          rate_date=dt.date(2026, 11, 20))))
    for label in ("Invoice 2027-000042", "Invoice no.", "Date", "Service period", "Project", "Contact",
                  "Description", "Quantity\u202f×\u202funit\u202fprice", "Amount", "Net total", "VAT 19 % on", "Total",
                  "VAT in EUR", "Please transfer", "reference", "Attn. Erika Muster", "UNITED STATES",
                  "Kontor eG, registered cooperative", "Registered office Berlin", "Cooperative register GnR 999 B",
                  "Board: Anna Beispiel, Jonas Muster", "Chair of supervisory board: Petra Probe",
                  "VAT ID DE136695976", "Tax no. 27/123/45678", "Phone +49 30 1234567"):
        assert label in text, label
    german = re.compile(r"Rechnung|Datum|Leistung|Projekt|Kontakt|Menge|Betrag|Summe|USt|Gesamt|Umsatzsteuer|Kurs|"
                        r"Bitte|überweisen|Verwendungszweck|z\. Hd\.|Vorstand|Aufsichtsrat|Sitz|Genossenschaft|St\.-Nr"
                        r"|Tel\.|VEREINIGTE")
    assert not german.findall(text.replace("Genossenschaftsweg", "")), "no German label on an English invoice"


@pytest.mark.unit
@pytest.mark.parametrize("buyer, values", [
    (DE_BUYER, ["2027-000042\r", "15.01.2027", "01.01.2027 – 30.09.2027", "Relaunch 2027\r", "DE811569869",
                "Mitgliederservice"]),
    (US_BUYER, ["2027-000042\r", f"15{NBSP}Jan{NBSP}2027", f"01{NBSP}Jan{NBSP}2027 – 30{NBSP}Sep{NBSP}2027\r",
                "Relaunch 2027\r", "Mitgliederservice"]),
])
def test_the_information_blocks_values_start_in_one_column_and_english_dates_do_not_wrap(buyer, values):
    document = RENDERER.render(issued(buyer, "EUR", "2", "640.00"))
    page = pypdfium2.PdfDocument(document)[0].get_textpage().get_text_range()
    info = page[page.index("Rechnungsnr." if buyer["language"] == "de" else "Invoice no."):]
    assert all(v in info for v in values), "the service period on one line, its dates unbroken"
    # each value's first glyph starts at the same x (the old tab stops moved with the glyphs before them)
    pdfium = pypdfium2.PdfDocument(document)[0].get_textpage()
    full = pdfium.get_text_range()
    start = full.index("Rechnungsnr." if buyer["language"] == "de" else "Invoice no.")
    xs = [round(pdfium.get_charbox(full.index(v, start), loose=True)[0], 1) for v in values]
    assert len(set(xs)) == 1, xs


@pytest.mark.unit
def test_the_footer_columns_start_in_one_place_on_every_line():
    document = RENDERER.render(issued(DE_BUYER, "EUR", "2", "640.00"))
    second = origins(document, "Vorstand:", "Aufsichtsratsvorsitz:", "USt-IdNr.", "St.-Nr.")
    third = origins(document, "Tel. +49", "rechnung@kontor.example\r\nDeutsche", "Deutsche Kreditbank", "IBAN DE02",
                    "BIC BYLA")
    assert len(set(second)) == 1 and len(set(third)) == 1, (second, third)


@pytest.mark.unit
@pytest.mark.parametrize("buyer, title", [(DE_BUYER, "Rechnung 2027-000042"), (US_BUYER, "Invoice 2027-000042")])
def test_a_plain_pdf_and_a_zugferd_hybrid_carry_the_same_metadata(buyer, title):
    inv = issued(buyer, "EUR", "2", "640.00")
    plain = PdfReader(io.BytesIO(RENDERER.render(inv)), strict=True)
    hybrid = PdfReader(io.BytesIO(RENDERER.render(inv, embed_xml=xrechnung(inv, SELLER))), strict=True)
    for reader in (plain, hybrid):
        info = reader.metadata
        assert (info["/Title"], info["/Subject"], info["/Author"], info["/Creator"], info["/Producer"]) == \
            (title, title, "Kontor eG", "Kontor", "Kontor (WeasyPrint 70.0)")
        assert reader.trailer["/Root"]["/Lang"] == buyer["language"]
    xmp = hybrid.trailer["/Root"]["/Metadata"].get_object().get_data().decode()
    assert "<pdf:Producer>Kontor (WeasyPrint 70.0)</pdf:Producer>" in xmp, "XMP and document information agree"
    assert f'<rdf:li xml:lang="x-default">{title}</rdf:li>' in xmp
    assert "<xmp:CreatorTool>Kontor</xmp:CreatorTool>" in xmp
    assert list(hybrid.attachments) == ["factur-x.xml"]


# -- through the service: the API and the events ---------------------------------------------------

async def register(infra, prefix, *, name, address: Address, language) -> ClientSnapshotV1:
    snapshot = ClientSnapshotV1(
        client_id=uuid.uuid4(), kind="company", name=name, vat_id=None, address=address,
        invoice_email="ap@example.com", language=language, standing=ClientStandingV1(status="ok"), version=1)
    await publish_event(infra.kafka_bootstrap, prefix, ClientRegisteredV1(
        client_id=snapshot.client_id, client=snapshot, occurred_at=NOW, actor=Actor(kind="member")), time=NOW)
    return snapshot


def order_in(client: ClientSnapshotV1, currency: str, line: OrderLineV1, tax: D, rate: str) -> OrderActivatedV1:
    order = OrderV1(
        order_id=uuid.uuid4(), member_id="member-1", status="active",
        client=OrderClientV1(client_id=client.client_id, name=client.name, kind="company", vat_id=client.vat_id,
                             country=client.address.country, language=client.language),
        contact_person=ContactPersonV1(name="Erika Muster", email="erika@acme.example"), sector="design",
        place_of_service="DE", project_name="Relaunch 2027", currency=currency, lines=(line,),
        net_total=line.net_amount, vat=(VatV1(category="S", rate=D(19), taxable_amount=line.net_amount,
                                              tax_amount=tax),),
        exchange_rate_eur=D(rate), exchange_rate_date=dt.date(2026, 11, 20),
        service_start=dt.date(2027, 1, 1), service_end=dt.date(2027, 1, 14), confirmation_mode="send",
        payment=PaymentTermsV1(mode="after_completion", due_in_days=14, invoice_date=dt.date(2027, 1, 15)),
        schedule=(PlannedInvoiceV1(seq=1, kind="after_completion", invoice_date=dt.date(2027, 1, 15),
                                   due_date=dt.date(2027, 1, 29), lines=(line,), net_amount=line.net_amount),),
        version=5)
    return OrderActivatedV1(order_id=order.order_id, order=order, occurred_at=NOW, actor=Actor(kind="client"))


@pytest.mark.integration
async def test_usd_and_jpy_invoices_through_the_service(infra, topic_prefix):
    validate = official_validator()
    async with running_service(SPEC, infra, topic_prefix=topic_prefix, clock=FixedClock(NOW),
                               billing_runs_enabled=False, allow_future_as_of=True, xrechnung_rules_dir=RULES) as svc:
        us = await register(infra, topic_prefix, name="Example Inc.", language="en", address=Address(
            street="1 Main St", postal_code="10001", city="New York", country="US", subdivision="NY"))
        jp = await register(infra, topic_prefix, name="Example KK", language="de", address=Address(
            street="1-1 Marunouchi", postal_code="100-0005", city="Tokyo", country="JP"))
        usd = order_in(us, "USD", OrderLineV1(description="Design", quantity=D(2), unit="day",
                                              unit_price=D("700.00"), net_amount=D("1400.00")), D("266.00"), "0.9225")
        jpy = order_in(jp, "JPY", OrderLineV1(description="Consulting", quantity=D(3), unit="day",
                                              unit_price=D("85000"), net_amount=D("255000")), D("48450"), "0.0061")
        for event in (usd, jpy):
            await publish_event(infra.kafka_bootstrap, topic_prefix, event, time=NOW)

        async def issued_of(order_id):
            r = await svc.http.post("/billing-runs", json={"as_of": "2027-01-15"}, headers=ADVISOR)
            assert r.status_code in (200, 202), r.text
            found = (await svc.http.get("/invoices", params={"order_id": str(order_id)}, headers=ADVISOR)).json()
            return found[0] if found and found[0]["status"] == "invoiced" else None

        expected = {usd.order_id: ("USD", "0.9225", "245.39", "VAT in EUR: 245.39 EUR (rate of 20\u00a0Nov\u00a02026: "
                                                               "1 USD = 0.9225 EUR)"),
                    jpy.order_id: ("JPY", "0.0061", "295.55", "Umsatzsteuer in EUR: 295,55 EUR (Kurs vom 20.11.2026: "
                                                               "1 JPY = 0,0061 EUR)")}
        numbers = {}
        for order_id, (currency, rate, eur, note) in expected.items():
            invoice = await eventually(lambda order_id=order_id: issued_of(order_id), timeout_s=90, interval_s=0.5,
                                       what=f"the {order_id} invoice issued")
            got = (await svc.http.get(f"/invoices/{invoice['invoice_id']}", headers=ADVISOR)).json()
            assert (got["currency"], got["exchange_rate_eur"], got["exchange_rate_date"], got["tax_total_eur"]) == \
                (currency, rate, "2026-11-20", eur)
            pdf = await svc.http.get(f"/invoices/{invoice['invoice_id']}/pdf", headers=ADVISOR)
            assert note in text_of(pdf.content)
            xml = (await svc.http.get(f"/invoices/{invoice['invoice_id']}/xrechnung.xml", headers=ADVISOR)).content
            assert f'<ram:TaxTotalAmount currencyID="EUR">{eur}</ram:TaxTotalAmount>'.encode() in xml
            assert validate(xml).valid, validate(xml)
            numbers[invoice["invoice_id"]] = (rate, eur)

        records = await read_topic(infra.kafka_bootstrap, f"{topic_prefix}kontor.invoices.v1", min_count=4)
        events = {json.loads(r.value)["invoice_id"]: json.loads(r.value)["invoice"] for r in records
                  if r.type == "kontor.invoice.issued.v1"}
        for invoice_id, (rate, eur) in numbers.items():
            assert (events[invoice_id]["exchange_rate_eur"], events[invoice_id]["exchange_rate_date"],
                    events[invoice_id]["tax_total_eur"]) == (rate, "2026-11-20", eur)
