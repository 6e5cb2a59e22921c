"""The invoice PDF: a Jinja2 template laid out by WeasyPrint, optionally as a ZUGFeRD hybrid.

Profiled (bench/render_invoices.py), a default `HTML(string=...).write_pdf()` spends its time on
per-render set-up and on the cascade, not on the PDF itself. `InvoicePdf` therefore does, once per
process, what does not change between invoices:

- one `FontConfiguration` (fontconfig lookup of the fonts);
- the style sheet parsed once per seller (its letterhead footer lives in @page margin boxes);
- a user-agent style sheet with only the rules this template needs, instead of the full HTML5
  one matched against every element;
- the template is well-formed XHTML, parsed by the C XML parser instead of the HTML5 tokenizer;
- the line table has a fixed layout, so cells are not measured twice.

WeasyPrint has no public hook for the last two points. `_InvoiceHTML` sets the same attributes
`weasyprint.HTML.__init__` sets; WeasyPrint is pinned in uv.lock and the PDF tests read every
rendered document back.
"""
from __future__ import annotations

import logging
import xml.etree.ElementTree as ET
from decimal import Decimal
from functools import cache
from pathlib import Path

import cssselect2
import weasyprint
from babel import Locale
from drafthorse.pdf import attach_xml
from jinja2 import Environment, FileSystemLoader, select_autoescape
from weasyprint.text.fonts import FontConfiguration
from weasyprint.urls import URLFetcher

from kontor.money import format_money

from kontor_invoicing.domain.model import Invoice, Line, VatBreakdown
from kontor_invoicing.settings import Seller

# WeasyPrint reports every step of every render at INFO; a billing run renders thousands.
logging.getLogger("weasyprint.progress").setLevel(logging.WARNING)

TEMPLATES = Environment(loader=FileSystemLoader(Path(__file__).resolve().parents[1] / "templates"),
                        autoescape=select_autoescape(["html"]), trim_blocks=True, lstrip_blocks=True)

USER_AGENT_CSS = """
head, title, style, meta { display: none }
html, body, div, p, h1 { display: block }
table { display: table; box-sizing: border-box; border-collapse: separate }
thead { display: table-header-group; vertical-align: middle }
tbody { display: table-row-group; vertical-align: middle }
tr { display: table-row } td, th { display: table-cell }
th, h1, b { font-weight: bold }
br::before { content: "\\A"; white-space: pre-line }
"""

UNITS = {
    "de": {"day": "Tg.", "hour": "Std.", "week": "Wo.", "month": "Mon.", "lump_sum": "psch.", "other": "Stk."},
    "en": {"day": "days", "hour": "hrs", "week": "wks", "month": "mths", "lump_sum": "lump sum", "other": "pcs"},
}
VAT_LABELS = {
    "de": {"S": "USt. {rate} % auf {base}", "AE": "Steuerschuldnerschaft des Leistungsempfängers (0 %)",
           "E": "Steuerfrei (0 %)", "O": "Nicht steuerbar (0 %)", "Z": "Nullsatz (0 %)"},
    "en": {"S": "VAT {rate} % on {base}", "AE": "Reverse charge (0 %)", "E": "VAT exempt (0 %)",
           "O": "Not subject to VAT (0 %)", "Z": "Zero rated (0 %)"},
}


class _InvoiceHTML(weasyprint.HTML):
    """A document from an already parsed tree, with the reduced user-agent style sheet."""

    def __init__(self, root: ET.Element, user_agent_css: weasyprint.CSS) -> None:  # noqa: D107
        self.base_url = None
        self.url_fetcher = URLFetcher()
        self.media_type = "print"
        self.wrapper_element = cssselect2.ElementWrapper.from_html_root(root, content_language=None)
        self.etree_element = self.wrapper_element.etree_element
        self._user_agent_css = user_agent_css

    def _ua_stylesheets(self, forms: bool = False) -> list[weasyprint.CSS]:
        return [self._user_agent_css]


def _date(language: str):
    return lambda d: "" if d is None else d.strftime("%d.%m.%Y" if language == "de" else "%d %b %Y")


@cache
def _country(code: str, language: str) -> str:
    """DIN 5008: the destination country in capitals, in the sender's or an international language."""
    return (Locale(language).territories.get(code) or code).upper()


def footer(seller: Seller) -> str:
    """The letterhead's footer as one CSS string: three columns separated by tabs, lines by \\A."""
    columns = (
        [seller.name, seller.street, f"{seller.postal_code} {seller.city}", seller.commercial_register],
        [f"Tel. {seller.phone}", seller.email, f"USt-IdNr. {seller.vat_id}", f"St.-Nr. {seller.tax_number}"],
        [seller.bank, f"IBAN {seller.iban}", f"BIC {seller.bic}"],
    )
    rows = zip(*(column + [""] * (4 - len(column)) for column in columns))
    text = "\n".join("\t".join(row).rstrip("\t") for row in rows)
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("\t", "\\9 ").replace("\n", "\\A ")


class InvoicePdf:
    """Renders invoice PDFs for one seller; build once, call `render` for every invoice."""

    def __init__(self, seller: Seller) -> None:
        self.seller = seller
        self._fonts = FontConfiguration()
        self._user_agent_css = weasyprint.CSS(string=USER_AGENT_CSS, font_config=self._fonts)
        css = TEMPLATES.get_template("invoice.css").render(footer=footer(seller))
        self._css = weasyprint.CSS(string=css, font_config=self._fonts)
        self._template = TEMPLATES.get_template("invoice.html")

    def html(self, invoice: Invoice) -> str:
        """The invoice as XHTML (also what the renderer benchmark feeds to other engines)."""
        language = invoice.buyer.get("language", "de")
        country = invoice.buyer.get("address", {}).get("country", self.seller.country)

        def money(amount: Decimal) -> str:
            return format_money(amount, invoice.currency, language)

        def quantity(line: Line) -> str:
            text = f"{line.quantity.normalize():f}"
            return f"{text.replace('.', ',') if language == 'de' else text} {UNITS[language].get(line.unit, '')}"

        def vat_label(v: VatBreakdown) -> str:
            labels = VAT_LABELS[language]
            return labels.get(v.category, labels["S"]).format(rate=f"{v.rate.normalize():f}", base=money(v.taxable_amount))

        date = _date(language)
        de = language == "de"
        info = [("Rechnungsnr." if de else "Invoice no.", invoice.number), ("Datum" if de else "Date", date(invoice.issue_date))]
        if invoice.service_period_start:
            info.append(("Leistungszeitraum" if de else "Service period",
                         f"{date(invoice.service_period_start)} – {date(invoice.service_period_end)}"))
        if invoice.project_name:
            info.append(("Projekt" if de else "Project", invoice.project_name))
        if invoice.buyer_reference != invoice.project_name:
            info.append(("Ihre Referenz" if de else "Your reference", invoice.buyer_reference))
        if invoice.buyer.get("vat_id"):
            info.append(("Ihre USt-IdNr." if de else "Your VAT id", invoice.buyer["vat_id"]))
        info.append(("Kontakt" if de else "Contact", self.seller.contact_name))
        notes = list(dict.fromkeys(v.note for v in invoice.vat_breakdown if v.note))
        return self._template.render(
            invoice=invoice, seller=self.seller, lang=language, country=_country(country, language), notes=notes,
            # the information block: one text with tab stops is far cheaper to lay out than a table
            info="\n".join(f"{key}\t{value}" for key, value in info),
            money=money, quantity=quantity, vat_label=vat_label, date=date,
            eur=lambda amount: format_money(amount, "EUR", language))

    def render(self, invoice: Invoice, *, embed_xml: bytes | None = None) -> bytes:
        """The PDF; with `embed_xml` a ZUGFeRD hybrid: PDF/A-3b with the X-Rechnung embedded as
        `factur-x.xml` (relationship Alternative) and the Factur-X XMP metadata (drafthorse)."""
        root = ET.fromstring(self.html(invoice))
        content = _InvoiceHTML(root, self._user_agent_css).write_pdf(
            font_config=self._fonts, stylesheets=[self._css],
            pdf_variant="pdf/a-3b" if embed_xml is not None else None)
        if embed_xml is None:
            return content
        return attach_xml(content, embed_xml, level="XRECHNUNG", lang=invoice.buyer.get("language", "de"),
                          metadata={"author": self.seller.name, "title": f"{invoice.number}",
                                    "subject": f"{'Stornorechnung' if invoice.kind == 'cancellation' else 'Rechnung'} "
                                               f"{invoice.number}", "creator": "Kontor", "producer": "Kontor"})
