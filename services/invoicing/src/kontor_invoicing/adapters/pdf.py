"""The invoice PDF: a Jinja2 template laid out by WeasyPrint, optionally as a ZUGFeRD hybrid.

Profiled (bench/render_invoices.py, cProfile and py-spy), WeasyPrint spends its time per box and per
line of text (computing styles, Pango layout, drawing each glyph in Python) and on subsetting and
compressing the fonts of every document. `InvoicePdf` therefore does, once per process, what does not
change between invoices:

- the letterhead (sender, return line, fold marks, footer, "page / pages") is laid out and rendered
  once per seller and page count, and copied under every page of each invoice as a form XObject
  (`Letterhead`), so an invoice lays out only its own text;
- computed styles are kept between invoices (`weasyprint_speedups.style_cache`): an element's style
  depends only on its declarations and its parent's style, which are the same in every invoice;
- Pango contexts and font descriptions are shared, a text's Pango layout is kept from laying out to
  drawing, and plain lines are drawn from glyph records read in one go, each glyph's piece of the
  text string worked out once per font and size (`weasyprint_speedups.pango_cache`);
- each font is read once, subset once to a fixed repertoire and compressed once
  (`weasyprint_speedups.font_cache`);
- one `FontConfiguration`, the style sheets parsed once per seller, a user-agent style sheet with
  only the rules this template needs, the template parsed by the C XML parser, tables with a fixed
  layout and cells styled by their own class.

The three caches (the `weasyprint_speedups` package) patch WeasyPrint 70 where it has no hook; each is
installed only for that version and its pydyf, and is active only inside `render` (other WeasyPrint
documents in the process are untouched).
`InvoicePdf(seller, caches=False)` renders without them; the tests check that both give the same
page bytes, text and pixels. WeasyPrint has no public hook for a parsed tree or another user-agent
sheet either: `_InvoiceHTML` sets the same attributes `weasyprint.HTML.__init__` sets. The letterhead
and the compressed font subsets go in through WeasyPrint's public `finisher` hook, which hands over the
pydyf document before it is written. WeasyPrint and pydyf are pinned exactly (pyproject.toml, uv.lock).
"""
from __future__ import annotations

import contextlib
import datetime as dt
import io
import logging
import threading
import xml.etree.ElementTree as ET
from decimal import Decimal
from functools import cache
from pathlib import Path

import cssselect2
import pydyf
import weasyprint
from babel import Locale
from drafthorse.pdf import attach_xml
from jinja2 import Environment, FileSystemLoader, select_autoescape
from pypdf import PdfReader, PdfWriter
from pypdf.generic import ArrayObject, DictionaryObject, IndirectObject, NameObject, PdfObject, StreamObject
from weasyprint.text.fonts import FontConfiguration
from weasyprint.urls import URLFetcher

from kontor.cooperative import imprint
from kontor.money import format_money
from kontor.subdivisions import city_line
from kontor_invoicing.adapters.weasyprint_speedups import font_cache, pango_cache, style_cache
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


# Who made the PDF, the same in a plain PDF and a ZUGFeRD hybrid (document information and XMP).
CREATOR = "Kontor"
PRODUCER = f"Kontor (WeasyPrint {weasyprint.__version__})"

# An invoice loads nothing from anywhere (and building a fetcher per document costs 0.5 ms).
_NO_FETCHING = URLFetcher(allowed_protocols=())


class _InvoiceHTML(weasyprint.HTML):
    """A document from an already parsed tree, with the reduced user-agent style sheet."""

    def __init__(self, root: ET.Element, user_agent_css: weasyprint.CSS) -> None:
        self.base_url = None
        self.url_fetcher = _NO_FETCHING
        self.media_type = "print"
        self.wrapper_element = cssselect2.ElementWrapper.from_html_root(root, content_language=None)
        self.etree_element = self.wrapper_element.etree_element
        self._user_agent_css = user_agent_css

    def _ua_stylesheets(self, forms: bool = False) -> list[weasyprint.CSS]:
        return [self._user_agent_css]


class _Reference(pydyf.Object):
    """A reference to an object whose number is known only once it is added to a document."""

    def __init__(self, target: pydyf.Object) -> None:
        super().__init__()
        self.target = target

    @property
    def data(self) -> bytes:
        return self.target.reference


class _Copied(pydyf.Object):
    """An object copied from the letterhead's PDF: its bytes, with references to other copies."""

    def __init__(self, parts: list[bytes | _Reference], stream: bytes | None) -> None:
        super().__init__()
        self.parts, self.stream = parts, stream

    @property
    def compressible(self) -> bool:
        return self.stream is None  # streams cannot go into an object stream

    @property
    def data(self) -> bytes:
        head = b"".join(part if isinstance(part, bytes) else part.data for part in self.parts)
        return head if self.stream is None else b"\n".join((head, b"stream", self.stream, b"endstream"))


def _xhtml(text: str) -> ET.Element:
    """The XHTML our own templates made (every value escaped by Jinja), as a tree."""
    return ET.fromstring(text)  # noqa: S314 - our templates' output, no outside XML, no document type


def _resolved(obj: PdfObject) -> PdfObject:
    """The object a reference points to (or the object itself); a dangling reference is an error."""
    target = obj.get_object()
    if target is None:
        raise ValueError(f"the letterhead PDF refers to a missing object ({obj!r})")
    return target


class Letterhead:
    """The pages of a rendered letterhead, ready to be drawn under the pages of an invoice.

    Each page becomes a form XObject whose content is the page's content stream as it was rendered
    (still compressed) and whose resources are the letterhead's own: its fonts are subsets of their
    own, so the invoice's text and fonts stay as WeasyPrint made them. The objects are kept as
    bytes; `add_to` copies them into an invoice's document and numbers them there.
    """

    def __init__(self, pdf: bytes) -> None:
        reader = PdfReader(io.BytesIO(pdf))
        self._objects: list[tuple[list[bytes | int], bytes | None]] = []
        numbers: dict[int, int] = {}

        def serialize(obj: PdfObject, parts: list[bytes | int]) -> None:
            if isinstance(obj, IndirectObject):
                if obj.idnum not in numbers:
                    numbers[obj.idnum] = add(_resolved(obj))
                parts.append(numbers[obj.idnum])
            elif isinstance(obj, DictionaryObject):
                parts.append(b"<<")
                for key, value in obj.items():
                    serialize(key, parts)
                    parts.append(b" ")
                    serialize(value, parts)
                    parts.append(b" ")
                parts.append(b">>")
            elif isinstance(obj, ArrayObject):
                parts.append(b"[")
                for value in obj:
                    serialize(value, parts)
                    parts.append(b" ")
                parts.append(b"]")
            else:
                buffer = io.BytesIO()
                obj.write_to_stream(buffer)
                parts.append(buffer.getvalue())

        def add(obj: PdfObject, extra: dict | None = None) -> int:
            """Copies one indirect object; returns its index. The slot is taken first: objects refer to each other."""
            index = len(self._objects)
            self._objects.append(([], None))
            parts: list[bytes | int] = []
            raw = None
            if isinstance(obj, StreamObject):
                raw = obj._data  # the stream as stored (encoded), copied as it is
                fields = DictionaryObject({k: v for k, v in obj.items() if k != "/Length"})
                fields.update(extra or {})
                serialize(fields, parts)
                parts[-1:-1] = [f"/Length {len(raw)} ".encode()]
            else:
                serialize(obj, parts)
            self._objects[index] = (_joined(parts), raw)
            return index

        self.pages: list[int] = []
        for page in reader.pages:
            content = _resolved(page["/Contents"])
            form = DictionaryObject()
            form.update({NameObject("/Type"): NameObject("/XObject"), NameObject("/Subtype"): NameObject("/Form"),
                         NameObject("/BBox"): page.mediabox, NameObject("/Resources"): page.raw_get("/Resources")})
            self.pages.append(add(content, form))

    def add_to(self, document: pydyf.PDF) -> list[bytes]:
        """Copies the letterhead into `document`; returns the reference of each page's form XObject."""
        copies = [_Copied([], stream) for _, stream in self._objects]
        for copy, (parts, _) in zip(copies, self._objects, strict=True):
            copy.parts = [part if isinstance(part, bytes) else _Reference(copies[part]) for part in parts]
            document.add_object(copy)
        return [copies[page].reference for page in self.pages]


def _joined(parts: list[bytes | int]) -> list[bytes | int]:
    """The same parts with each run of bytes joined into one: copied into every invoice, they are joined once here."""
    joined: list[bytes | int] = []
    for part in parts:
        if isinstance(part, bytes) and joined and isinstance(joined[-1], bytes):
            joined[-1] += part
        else:
            joined.append(part)
    return joined


def _keep(text: str) -> str:
    """Keeps a phrase together on a justified line: narrow no-break spaces, which justifying leaves as they are."""
    return text.replace(" ", "\u202f")


def document_title(invoice: Invoice, language: str) -> str:
    """What the document is: a partial invoice "n of N" of the order's schedule (§ 14 Abs. 5 UStG), the
    final invoice that settles them, a cancellation invoice, or an invoice."""
    de = language == "de"
    if invoice.kind == "cancellation":
        return "Stornorechnung" if de else "Cancellation invoice"
    if invoice.schedule_kind == "installment":
        n = str(invoice.seq)
        if invoice.installments:
            n += f" {'von' if de else 'of'} {invoice.installments}"
        return f"{'Abschlagsrechnung' if de else 'Down-payment invoice'} {n}"
    if invoice.schedule_kind == "final":
        return "Schlussrechnung" if de else "Final invoice"
    return "Rechnung" if de else "Invoice"


def signed_money(amount: Decimal, currency: str, language: str) -> str:
    """An amount as people read it, a negative one with a minus sign (U+2212): −1.280,00 EUR."""
    text = format_money(abs(amount), currency, language)
    return f"\u2212{text}" if amount < 0 else text


MONTHS_EN = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def format_date(d: dt.date | None, language: str) -> str:
    """15.04.2027 (de), 15 Apr 2027 (en: months named whatever the process's locale, held together by
    no-break spaces so that a date never wraps)."""
    if d is None:
        return ""
    if language == "de":
        return f"{d.day:02d}.{d.month:02d}.{d.year:04d}"
    return f"{d.day:02d}\u00a0{MONTHS_EN[d.month - 1]}\u00a0{d.year:04d}"


def format_rate(rate: Decimal, language: str) -> str:
    """An exchange rate with the decimals it was stored with, no trailing zeros: 0,0061 (de), 0.0061 (en)."""
    text = f"{rate.normalize():,f}"
    return text.translate(str.maketrans(",.", ".,")) if language == "de" else text


def eur_vat(invoice: Invoice, language: str) -> str | None:
    """The note of an invoice in another currency: its VAT in EUR to the cent (§ 16 Abs. 6 UStG) and the rate
    it was converted at, as the order stored it (EUR per one unit of the currency) and dated when known."""
    amount = invoice.tax_total_eur
    if amount is None or invoice.exchange_rate_eur is None:
        return None
    de = language == "de"
    rate = f"1 {invoice.currency} = {format_rate(invoice.exchange_rate_eur, language)} EUR"
    if invoice.exchange_rate_date:
        rate = f"{'Kurs vom' if de else 'rate of'} {format_date(invoice.exchange_rate_date, language)}: {rate}"
    else:
        rate = f"{'Kurs' if de else 'rate'}: {rate}"
    vat = signed_money(-amount if invoice.kind == "cancellation" else amount, "EUR", language)
    return f"{'Umsatzsteuer in EUR' if de else 'VAT in EUR'}: {vat} ({rate})"


def _date(language: str):
    return lambda d: format_date(d, language)


@cache
def _country(code: str, language: str) -> str:
    """DIN 5008: the destination country in capitals, in the sender's or an international language."""
    return (Locale(language).territories.get(code) or code).upper()


def footer_columns(seller: Seller, language: str) -> tuple[list[str], list[str], list[str]]:
    """The letter's footer in the invoice's language: the cooperative's imprint (kontor.cooperative, § 25a GenG),
    its tax numbers, how to reach and pay it. Three columns of lines."""
    return imprint(seller, language)


def _css_string(lines: list[str]) -> str:
    text = "\n".join(lines)
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\A ")


def footer(seller: Seller, language: str = "de") -> tuple[str, str, str]:
    """The letterhead's footer as three CSS strings (lines separated by \\A), one per margin box: each column
    is a box of its own, so its lines start at the same place whatever the glyphs before them."""
    who, people, reach = footer_columns(seller, language)
    return _css_string(who), _css_string(people), _css_string(reach)


class InvoicePdf:
    """Renders invoice PDFs for one seller; build once, call `render` for every invoice."""

    def __init__(self, seller: Seller, *, caches: bool = True) -> None:
        self.seller = seller
        # computed styles, Pango contexts and font subsets kept between invoices (see each module)
        self.caches = caches and all([style_cache.install(), pango_cache.install(), font_cache.install()])
        self._styles = style_cache.StyleCache()
        self._font_subsets = font_cache.FontSubsets()
        self._fonts = FontConfiguration()
        self._user_agent_css = weasyprint.CSS(string=USER_AGENT_CSS, font_config=self._fonts)
        self._css_text = TEMPLATES.get_template("invoice.css").render()
        # the footer speaks the invoice's language: one letterhead style sheet per language, parsed on first use
        self._letterhead_css_texts: dict[str, str] = {}
        self._letterhead_css: dict[str, weasyprint.CSS] = {}
        self._css = weasyprint.CSS(string=self._css_text, font_config=self._fonts)
        self._template = TEMPLATES.get_template("invoice.html")
        self._letterheads: dict[tuple[str, int], Letterhead] = {}
        self._lock = threading.Lock()

    def letterhead_css_text(self, language: str) -> str:
        if language not in self._letterhead_css_texts:
            left, center, right = footer(self.seller, language)
            self._letterhead_css_texts[language] = TEMPLATES.get_template("letterhead.css").render(
                footer_left=left, footer_center=center, footer_right=right)
        return self._letterhead_css_texts[language]

    def letterhead(self, pages: int, language: str = "de") -> Letterhead:
        """The letterhead for an invoice of `pages` pages in `language`, rendered on first use and kept."""
        key = (language, pages)
        with self._lock:
            if key not in self._letterheads:
                if language not in self._letterhead_css:
                    self._letterhead_css[language] = weasyprint.CSS(string=self.letterhead_css_text(language),
                                                                    font_config=self._fonts)
                pdf = _InvoiceHTML(_xhtml(self._letterhead_html(pages, language)),
                                   self._user_agent_css).write_pdf(font_config=self._fonts,
                                                                   stylesheets=[self._letterhead_css[language]])
                if len(self._letterheads) >= 32:  # page counts seen; a long tail of huge invoices stays bounded
                    self._letterheads.pop(next(iter(self._letterheads)))
                self._letterheads[key] = Letterhead(pdf)
            return self._letterheads[key]

    def _finish(self, document: weasyprint.Document, pdf: pydyf.PDF) -> None:
        """WeasyPrint's finisher, called before the PDF is written."""
        # the same document information as a ZUGFeRD hybrid's: title (= the <title>, "Rechnung 2027-000042"),
        # subject, author, creator, producer; the language comes from <html lang> (/Lang)
        title = document.metadata.title or ""
        pdf.info.update({"Title": pydyf.String(title), "Subject": pydyf.String(title),
                         "Author": pydyf.String(self.seller.name), "Creator": pydyf.String(CREATOR),
                         "Producer": pydyf.String(PRODUCER)})
        self._draw_letterhead(document, pdf)
        if self.caches:
            self._font_subsets.compress(pdf)

    def _draw_letterhead(self, document: weasyprint.Document, pdf: pydyf.PDF) -> None:
        """Each page first draws its page of the letterhead, then its own content."""
        forms = self.letterhead(len(document.pages), self._language(document)).add_to(pdf)
        # pydyf keeps the page tree's kids as [number, 0, "R", number, 0, "R", ...]
        for i, (number, form) in enumerate(zip(pdf.pages["Kids"][::3], forms, strict=True), start=1):
            page = pdf.objects[number]
            resources = pdf.objects[int(page["Resources"].split()[0])]
            resources["XObject"][f"KontorLetterhead{i}"] = form
            pdf.objects[int(page["Contents"].split()[0])].stream.insert(0, f"q /KontorLetterhead{i} Do Q".encode())

    def _caches(self) -> contextlib.AbstractContextManager:
        if not self.caches:
            return contextlib.nullcontext()
        stack = contextlib.ExitStack()
        for scope in (self._styles.active(), pango_cache.active(), self._font_subsets.active()):
            stack.enter_context(scope)
        return stack

    @staticmethod
    def _language(document: weasyprint.Document) -> str:
        return document.metadata.lang or "de"  # from <html lang>, which `html` sets to the invoice's language

    def _letterhead_html(self, pages: int, language: str = "de") -> str:
        return TEMPLATES.get_template("letterhead.html").render(seller=self.seller, pages=pages, lang=language)

    def standalone_html(self, invoice: Invoice) -> str:
        """The same pages as one self-contained HTML document: the letterhead back in the letter frame and
        both style sheets inlined. What an engine that lays out everything at once renders (the benchmark's
        other engines; the test that checks the drawn letterhead against one whole layout)."""
        page = _xhtml(self.html(invoice))
        frame = page.find(".//div[@class='letter']")
        language = invoice.buyer.get("language", "de")
        letterhead = _xhtml(self._letterhead_html(1, language)).find(".//div[@class='letter']")
        if frame is None or letterhead is None:
            raise ValueError("the invoice and the letterhead template each have a div.letter")
        for i, element in enumerate(letterhead):
            frame.insert(i, element)
        html = ET.tostring(page, encoding="unicode", method="html")  # <div></div>, never <div />
        css = f"{self.letterhead_css_text(language)}\n{self._css_text}"
        return html.replace("</head>", f'<meta charset="utf-8"><style>{css}</style></head>', 1)

    def html(self, invoice: Invoice) -> str:
        """The invoice's own content as XHTML; the letterhead is drawn under it (`render`)."""
        language = invoice.buyer.get("language", "de")
        address = invoice.buyer.get("address", {})
        country = address.get("country", self.seller.country)

        sign = -1 if invoice.kind == "cancellation" else 1  # a cancellation invoice prints every amount negative

        def money(amount: Decimal) -> str:
            return signed_money(sign * amount, invoice.currency, language)

        def quantity(line: Line) -> str:
            text = f"{line.quantity.normalize():f}"
            return f"{text.replace('.', ',') if language == 'de' else text} {UNITS[language].get(line.unit, '')}"

        def vat_label(v: VatBreakdown) -> str:
            labels = VAT_LABELS[language]
            return labels.get(v.category, labels["S"]).format(rate=f"{v.rate.normalize():f}",
                                                              base=money(v.taxable_amount))

        date = _date(language)
        de = language == "de"
        info = [("Rechnungsnr." if de else "Invoice no.", invoice.number),
                ("Datum" if de else "Date", date(invoice.issue_date))]
        if invoice.service_period_start:
            info.append(("Leistungszeitraum" if de else "Service period",
                         f"{date(invoice.service_period_start)} – {date(invoice.service_period_end)}"))
        if invoice.project_name:
            info.append(("Projekt" if de else "Project", invoice.project_name))
        if invoice.buyer_reference != invoice.project_name:
            info.append(("Ihre Referenz" if de else "Your reference", invoice.buyer_reference))
        if invoice.buyer.get("vat_id"):
            info.append(("Ihre USt-IdNr." if de else "Your VAT ID", invoice.buyer["vat_id"]))
        info.append(("Kontakt" if de else "Contact", self.seller.contact_name))
        notes = list(dict.fromkeys(v.note for v in invoice.vat_breakdown if v.note))
        return self._template.render(
            invoice=invoice, seller=self.seller, lang=language, country=_country(country, language), notes=notes,
            place=city_line(postal_code=address.get("postal_code", ""), city=address.get("city", ""),
                            country=country, subdivision=address.get("subdivision")),
            # the information block: a table of two columns, so every value starts where the others do and a
            # long one wraps in its column (tab stops moved with the glyphs before them)
            info=info,
            money=money, quantity=quantity, vat_label=vat_label, date=date, keep=_keep,
            title=document_title(invoice, language),
            eur_vat=eur_vat(invoice, language))

    def render(self, invoice: Invoice, *, embed_xml: bytes | None = None) -> bytes:
        """The PDF; with `embed_xml` a ZUGFeRD hybrid: PDF/A-3b with the X-Rechnung embedded as
        `factur-x.xml` (relationship Alternative) and the Factur-X XMP metadata (drafthorse)."""
        root = _xhtml(self.html(invoice))
        with self._caches():
            content = _InvoiceHTML(root, self._user_agent_css).write_pdf(
                font_config=self._fonts, stylesheets=[self._css], finisher=self._finish,
                pdf_variant="pdf/a-3b" if embed_xml is not None else None)
        if embed_xml is None:
            return content
        language = invoice.buyer.get("language", "de")
        title = f"{document_title(invoice, language)} {invoice.number}"
        hybrid = attach_xml(content, embed_xml, level="XRECHNUNG", lang=language,
                            metadata={"author": self.seller.name, "title": title, "subject": title, "creator": CREATOR,
                                      "producer": PRODUCER})
        # drafthorse writes the XMP with our producer but leaves pypdf's in the document information, which
        # PDF/A wants equal: an incremental update sets it (the bytes before it stay as they are)
        writer = PdfWriter(io.BytesIO(hybrid), incremental=True)
        writer.add_metadata({"/Producer": PRODUCER})
        out = io.BytesIO()
        writer.write(out)
        return out.getvalue()
