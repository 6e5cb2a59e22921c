"""The invoice PDF read back: number, totals, IBAN, notes, language and page count."""
import datetime as dt
import io
import uuid
from decimal import Decimal as D

import pytest
from pypdf import PdfReader

from kontor.money import round_money
from kontor_invoicing.adapters.pdf import InvoicePdf
from kontor_invoicing.domain import model
from kontor_invoicing.settings import Seller

pytestmark = pytest.mark.unit
RENDERER = InvoicePdf(Seller())
NOW = dt.datetime(2027, 1, 15, 9, tzinfo=dt.UTC)
BUYER = {"name": "ACME Werkstatt GmbH", "language": "de",
         "address": {"street": "Hauptstraße 1", "postal_code": "10115", "city": "Berlin", "country": "DE"}}


def issued(lines, buyer=BUYER, **kw) -> model.Invoice:
    draft = model.Invoice(id=uuid.uuid4(), order_id=uuid.uuid4(), member_id="member-secret-name", client_id=uuid.uuid4(),
                          seq=1, kind="invoice", schedule_kind="after_completion", status="draft", currency="EUR",
                          lines=tuple(lines), invoice_date=NOW.date(), due_in_days=14, created_at=NOW,
                          project_name="Relaunch 2027", buyer=buyer, **kw)
    return model.issue(draft, number="2027-000042", issue_date=NOW.date())


def text_of(document: bytes) -> tuple[str, int]:
    reader = PdfReader(io.BytesIO(document))
    return "\n".join(page.extract_text() for page in reader.pages), len(reader.pages)


def line(i=0, qty="2", price="640.00", cat="S", rate="19"):
    return model.Line(f"Leistung {i}", D(qty), "day", D(price), round_money(D(qty) * D(price), "EUR"), cat, D(rate))


def test_one_page_invoice_in_german():
    inv = issued([line()])
    text, pages = text_of(RENDERER.render(inv))
    assert pages == 1 and "1 / 1" in text
    assert "Rechnung 2027-000042" in text and "Relaunch 2027" in text
    assert "1.280,00 EUR" in text and "243,20 EUR" in text and "1.523,20 EUR" in text
    assert "DE02120300000000202051" in text and "ACME Werkstatt GmbH" in text
    assert "member-secret-name" not in text, "the member's name never appears"


def test_sixty_lines_break_across_pages_with_page_numbers():
    inv = issued([line(i, "1.5", "85.35") for i in range(60)])
    text, pages = text_of(RENDERER.render(inv))
    assert pages >= 2 and f"{pages} / {pages}" in text and f"1 / {pages}" in text
    assert "Leistung 0" in text and "Leistung 59" in text
    assert text.count("Einzelpreis") >= 2, "the table header repeats on the next page"
    assert "7.681,80 EUR" in text  # 60 × (1.5 × 85.35 = 128.025 → 128.03) net


def test_english_reverse_charge_and_cancellation_title():
    buyer = {**BUYER, "language": "en", "name": "Société Exemple SARL"}
    inv = issued([line(cat="AE", rate="0")], buyer=buyer, vat_note="Reverse charge: VAT is owed by the recipient")
    text, _ = text_of(RENDERER.render(inv))
    assert "Invoice 2027-000042" in text and "Reverse charge" in text and "1,280.00 EUR" in text
    _, storno = model.cancel(inv, cancellation_id=uuid.uuid4(), number="2027-000043", issue_date=NOW.date(), now=NOW)
    text, _ = text_of(RENDERER.render(storno))
    assert "Cancellation invoice 2027-000043" in text and "2027-000042" in text


def test_zugferd_hybrid_is_pdf_a3_with_the_identical_xml():
    from kontor_invoicing.adapters.documents import xrechnung

    inv = issued([line(i) for i in range(3)])
    xml = xrechnung(inv, Seller())
    document = RENDERER.render(inv, embed_xml=xml)
    reader = PdfReader(io.BytesIO(document))
    assert reader.attachments["factur-x.xml"] == [xml], "the embedded X-Rechnung is byte for byte the one we send"
    root = reader.trailer["/Root"]
    spec = root["/AF"][0].get_object()
    assert spec["/AFRelationship"] == "/Alternative" and spec["/F"] == "factur-x.xml"
    assert root["/OutputIntents"][0].get_object()["/S"] == "/GTS_PDFA1", "PDF/A needs an output intent"
    xmp = root["/Metadata"].get_object().get_data().decode()
    assert "<pdfaid:part>3</pdfaid:part>" in xmp and "<pdfaid:conformance>B</pdfaid:conformance>" in xmp
    assert "<fx:DocumentFileName>factur-x.xml</fx:DocumentFileName>" in xmp
    assert "<fx:ConformanceLevel>XRECHNUNG</fx:ConformanceLevel>" in xmp
    text, pages = text_of(document)
    assert pages == 1 and "Rechnung 2027-000042" in text, "still the same human-readable invoice"


def test_a_plain_pdf_has_no_attachment():
    reader = PdfReader(io.BytesIO(RENDERER.render(issued([line()]))))
    assert not reader.attachments and "/AF" not in reader.trailer["/Root"]
