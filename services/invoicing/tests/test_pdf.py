"""The invoice PDF read back: number, totals, IBAN, notes, language and page count."""
import datetime as dt
import io
import uuid
from decimal import Decimal as D

import pytest
from pypdf import PdfReader

from kontor.money import round_money
from kontor_invoicing.adapters.pdf import InvoicePdf
from kontor_invoicing.adapters.weasyprint_speedups import pango_cache
from kontor_invoicing.domain import model
from kontor_invoicing.settings import Seller

pytestmark = pytest.mark.unit
RENDERER = InvoicePdf(Seller())
NOW = dt.datetime(2027, 1, 15, 9, tzinfo=dt.UTC)
BUYER = {"name": "ACME Werkstatt GmbH", "language": "de",
         "address": {"street": "Hauptstraße 1", "postal_code": "10115", "city": "Berlin", "country": "DE"}}


def issued(lines, buyer=BUYER, **kw) -> model.Invoice:
    draft = model.Invoice(id=uuid.uuid4(), order_id=uuid.uuid4(), member_id="member-secret-name",
                          client_id=uuid.uuid4(), seq=1, kind="invoice", schedule_kind="after_completion",
                          status="draft", currency="EUR",
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
    _, storno = model.request_cancellation(inv, cancellation_id=uuid.uuid4(), on=NOW.date(), reason="wrong", now=NOW)
    storno = model.number(storno, sequence=43)
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


def test_the_letterhead_is_drawn_under_every_page_and_rendered_once_per_page_count():
    seller = Seller()
    inv = issued([line(i, "1.5", "85.35") for i in range(50)])
    reader = PdfReader(io.BytesIO(RENDERER.render(inv)), strict=True)
    pages = [page.extract_text() for page in reader.pages]
    assert len(pages) == 2
    for number, text in enumerate(pages, start=1):
        assert f"{number} / 2" in text, "page numbers come with the letterhead"
        assert f"St.-Nr. {seller.tax_number}" in text and seller.register_court in text, "the footer, on every page"
        assert f"/KontorLetterhead{number}" in reader.pages[number - 1]["/Resources"]["/XObject"]
    return_line = f"{seller.name} · {seller.street} · {seller.postal_code} {seller.city}"
    assert return_line in pages[0] and return_line not in pages[1], "sender and return line only on the first page"
    assert "Leistung 49" in pages[1], "and the invoice's own text"
    assert "Rechnung 2027-000042 · Relaunch 2027" in pages[1], "and the invoice's own text"
    assert RENDERER.letterhead(2) is RENDERER.letterhead(2), "laid out once per page count, then reused"


def test_the_drawn_letterhead_puts_every_pixel_where_one_whole_layout_would():
    """Kontor draws the letterhead under the invoice's own pages; WeasyPrint laying out the same page as one
    document (letterhead inline, its defaults) must give the same picture, page by page."""
    import pypdfium2
    import weasyprint

    def pictures(document: bytes) -> list[bytes]:
        pdf = pypdfium2.PdfDocument(document)
        return [pdf[i].render(scale=1).to_pil().convert("L").tobytes() for i in range(len(pdf))]

    buyer = {**BUYER, "name": "Société Exemple SARL", "language": "en",
             "address": {"street": "1 rue de la Paix", "postal_code": "75002", "city": "Paris", "country": "FR"}}
    for inv in (issued([line()]), issued([line(i, "1.5", "85.35") for i in range(50)], buyer=buyer)):
        ours = pictures(RENDERER.render(inv))
        whole = pictures(weasyprint.HTML(string=RENDERER.standalone_html(inv)).write_pdf())
        assert len(ours) == len(whole) == len(inv.lines) // 50 + 1
        for number, (mine, theirs) in enumerate(zip(ours, whole, strict=True), start=1):
            assert mine == theirs, f"page {number} of {len(inv.lines)} line(s) differs from the whole layout"
        assert len(set(ours[0])) > 2, "a page with something on it"


def test_the_caches_change_no_byte_of_the_pages_and_no_pixel():
    """Computed styles, Pango contexts and font subsets kept between invoices (weasyprint_speedups: style_cache,
    pango_cache, font_cache) give the same pages as WeasyPrint's own code, whatever was rendered before."""
    import pypdfium2
    import weasyprint

    def pages(document: bytes) -> tuple[list[bytes], str, list[bytes], dict]:
        reader = PdfReader(io.BytesIO(document), strict=True)
        pdf = pypdfium2.PdfDocument(document)
        fonts = {}  # each font's glyph widths, metrics and flags, and its map from glyphs to text, in the order written
        for page in reader.pages:
            for font in page["/Resources"]["/Font"].values():
                font = font.get_object()
                cid_font = font["/DescendantFonts"][0].get_object()
                descriptor = {key: value for key, value in cid_font["/FontDescriptor"].get_object().items()
                              if not key.startswith("/FontFile")}  # the file is the subset: larger with the caches
                fonts[font["/BaseFont"]] = (list(cid_font["/W"]), descriptor,
                                            font["/ToUnicode"].get_object().get_data())
        return ([page.get_contents().get_data() for page in reader.pages],
                "\n".join(page.extract_text() for page in reader.pages),
                [pdf[i].render(scale=1).to_pil().convert("L").tobytes() for i in range(len(pdf))], fonts)

    cached, plain = InvoicePdf(Seller()), InvoicePdf(Seller(), caches=False)
    assert cached.caches and not plain.caches, "the caches are written for the WeasyPrint and pydyf pinned"
    pango_cache._caches()[2].clear()  # glyph pieces from earlier tests' invoices
    english = {**BUYER, "language": "en", "name": "Société Exemple SARL",
               "address": {"street": "1 rue de la Paix", "postal_code": "75002", "city": "Paris", "country": "FR"}}
    greek = {**BUYER, "name": "Αθηνά Παπαδοπούλου"}  # glyphs outside the font repertoire
    cases = [issued([line()]),
             issued([line(i, "1.5", "85.35") for i in range(40)], vat_note="Steuerfrei nach § 4 UStG"),
             issued([line(cat="AE", rate="0")], buyer=english, vat_note="Reverse charge"),
             issued([line()], buyer=greek)]
    first = [cached.render(inv) for inv in cases]
    for inv, document in zip(cases, first, strict=True):
        assert pages(document) == pages(plain.render(inv)), inv.buyer["name"]
        assert cached.render(inv) == document, "the same bytes again, after the other invoices"
    assert cached._styles.hits > 0 and cached._font_subsets.reused > 0 and cached._font_subsets.declined > 0
    assert cached._font_subsets._fonts, "documents' fonts were copied from the first made"
    assert any(pieces for pieces, _ in pango_cache._caches()[2].values()), "lines were drawn from glyph records"

    hits, reused = cached._styles.hits, cached._font_subsets.reused
    weasyprint.HTML(string=cached.standalone_html(cases[0])).write_pdf()
    assert (cached._styles.hits, cached._font_subsets.reused) == (hits, reused), "other documents are left alone"


@pytest.mark.parametrize("address, place", [
    ({"street": "100 Congress Ave", "postal_code": "78701", "city": "Austin", "country": "US", "subdivision": "TX"},
     "Austin, TX 78701"),
    ({"street": "1 Front St W", "postal_code": "M5V 3L9", "city": "Toronto", "country": "CA", "subdivision": "ON"},
     "Toronto ON M5V 3L9"),
    ({"street": "1 George St", "postal_code": "2000", "city": "Sydney", "country": "AU", "subdivision": "NSW"},
     "Sydney NSW 2000"),
    ({"street": "Hauptstraße 1", "postal_code": "10115", "city": "Berlin", "country": "DE"}, "10115 Berlin"),
])
def test_the_address_names_the_place_as_the_country_s_post_writes_it(address, place):
    text, _ = text_of(RENDERER.render(issued([line()], buyer={**BUYER, "language": "en", "address": address})))
    street_and_place = f"{address['street']}\n{place}"
    assert street_and_place in text, text
