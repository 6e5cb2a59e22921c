"""Rendering an invoice's documents: the PDF (Jinja2 + WeasyPrint) and the X-Rechnung
(CII, built with drafthorse). The invoicing service only needs `DocumentRenderer`."""
from __future__ import annotations

import datetime as dt
import functools
import hashlib
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Protocol

from lxml import etree

from kontor.subdivisions import subdivision_name
from kontor_invoicing.adapters.pdf import InvoicePdf
from kontor_invoicing.domain.model import Invoice
from kontor_invoicing.settings import Seller

UNIT_CODES = {"day": "DAY", "hour": "HUR", "week": "WEE", "month": "MON", "lump_sum": "LS", "other": "C62"}
GUIDELINE = "urn:cen.eu:en16931:2017#compliant#urn:xeinkauf.de:kosit:xrechnung_3.0"
PROCESS = "urn:fdc:peppol.eu:2017:poacc:billing:01:1.0"
EXEMPTION_CODES = {"AE": "VATEX-EU-AE", "O": "VATEX-EU-O"}
FILE_STEMS = {"cancellation": "Stornorechnung", "installment": "Abschlagsrechnung", "final": "Schlussrechnung"}


@dataclass(frozen=True)
class Rendered:
    kind: str
    filename: str
    media_type: str
    content: bytes

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.content).hexdigest()


class DocumentRenderer(Protocol):
    def render(self, invoice: Invoice) -> list[Rendered]: ...


def _date(d: dt.date) -> dt.datetime:
    return dt.datetime.combine(d, dt.time.min)


def installment_notes(invoice: Invoice) -> list[str]:
    """BT-22 notes of a partial or final invoice, in the client's language: what share of the order a
    partial invoice bills; every partial invoice a final invoice deducts, with its VAT per rate (the
    syntax has room for one preceding invoice reference, BG-3, and § 14 Abs. 5 UStG wants them all)."""
    de = invoice.buyer.get("language", "de") == "de"
    cur = invoice.currency
    if invoice.kind == "invoice" and invoice.schedule_kind == "installment":
        of = f" {'von' if de else 'of'} {invoice.installments}" if invoice.installments else ""
        note = f"{'Abschlagsrechnung' if de else 'Down-payment invoice'} {invoice.seq}{of}"
        if (t := invoice.order_total) is not None:
            note += (f"; Auftragssumme {t.gross_amount} {cur} brutto ({t.net_amount} {cur} netto, "
                     f"{t.tax_amount} {cur} USt.)" if de else
                     f"; order total {t.gross_amount} {cur} gross ({t.net_amount} {cur} net, {t.tax_amount} {cur} VAT)")
        return [note]
    if not invoice.deductions:
        return []
    parts = []
    for d in invoice.deductions:
        vat = ", ".join(f"{'USt.' if de else 'VAT'} {v.rate.normalize():f} % {v.tax_amount} {cur}" for v in d.vat)
        parts.append(f"{d.number} {'vom' if de else 'of'} {d.issue_date.isoformat()}: "
                     f"{'netto' if de else 'net'} {d.net_amount} {cur}, {vat}, {'brutto' if de else 'gross'} "
                     f"{d.gross_amount} {cur}")
    head = "Abzüglich Abschlagsrechnungen" if de else "Less down-payment invoices"
    return [f"{head}: " + "; ".join(parts) + "."]


def seller_legal_information(seller: Seller) -> str:
    """BT-33, the seller's additional legal information: legal form, seat, register, board and the chair of
    the supervisory board, as the letter's footer states them (German: the register's language)."""
    parts = [f"{seller.legal_form}, Sitz {seller.seat}", f"{seller.register_court}, {seller.register_number}"]
    if seller.board:
        parts.append(f"Vorstand: {', '.join(seller.board)}")
    if seller.supervisory_board_chair:
        parts.append(f"Aufsichtsratsvorsitz: {seller.supervisory_board_chair}")
    return "; ".join(parts)


def xrechnung(invoice: Invoice, seller: Seller) -> bytes:
    from drafthorse.models.accounting import ApplicableTradeTax
    from drafthorse.models.document import Document
    from drafthorse.models.note import IncludedNote
    from drafthorse.models.party import TaxRegistration
    from drafthorse.models.payment import PaymentMeans, PaymentTerms
    from drafthorse.models.tradelines import LineItem

    if invoice.issue_date is None or invoice.due_date is None:
        raise ValueError(f"invoice {invoice.id}: an X-Rechnung is made of an issued invoice (issue and due date)")
    issue_date, due = invoice.issue_date, invoice.due_date
    cur = invoice.currency
    doc = Document()
    doc.context.guideline_parameter.id = GUIDELINE
    doc.context.business_parameter.id = PROCESS
    doc.header.id = invoice.number
    doc.header.type_code = "381" if invoice.kind == "cancellation" else "380"
    doc.header.issue_date_time = _date(issue_date)
    if invoice.description:
        doc.header.notes.add(IncludedNote(content=invoice.description))
    for note in installment_notes(invoice):
        doc.header.notes.add(IncludedNote(content=note))

    s = doc.trade.agreement.seller
    s.name = seller.name
    s.address.line_one = seller.street
    s.address.postcode = seller.postal_code
    s.address.city_name = seller.city
    s.address.country_id = seller.country
    # BR-O-02: an invoice "not subject to VAT" names no VAT identifiers (the tax number stays)
    not_subject = any(line.vat_category == "O" for line in invoice.lines)
    if not not_subject:
        s.tax_registrations.add(TaxRegistration(id=("VA", seller.vat_id)))
    s.tax_registrations.add(TaxRegistration(id=("FC", seller.tax_number)))
    # BT-30: the register number the letter's footer prints; BT-33: the rest of what § 25a GenG asks
    s.legal_organization.id = seller.register_number  # (BR-CO-26 when no VAT id is given)
    s.description = seller_legal_information(seller)
    s.contact.person_name = seller.contact_name
    s.contact.telephone.number = seller.phone
    s.contact.email.address = seller.email
    s.electronic_address.uri_ID = ("EM", seller.electronic_address)

    buyer = invoice.buyer
    b = doc.trade.agreement.buyer
    b.name = buyer.get("name") or "?"
    address = buyer.get("address") or {}
    b.address.line_one = address.get("street")
    b.address.postcode = address.get("postal_code")
    b.address.city_name = address.get("city")
    b.address.country_id = address.get("country")
    if subdivision := subdivision_name(address.get("subdivision"), address.get("country") or ""):
        b.address.country_subdivision = subdivision  # BT-54, by name ("Texas" for US-TX)
    if buyer.get("vat_id") and not not_subject:
        b.tax_registrations.add(TaxRegistration(id=("VA", buyer["vat_id"])))
    b.electronic_address.uri_ID = ("EM", buyer.get("invoice_email") or invoice.contact_email)
    doc.trade.agreement.buyer_reference = invoice.buyer_reference

    if invoice.service_period_start and invoice.service_period_end:
        doc.trade.settlement.period.start = _date(invoice.service_period_start)
        doc.trade.settlement.period.end = _date(invoice.service_period_end)
    if invoice.kind == "cancellation":
        if invoice.cancels_number is None or invoice.cancels_issue_date is None:
            raise ValueError(f"cancellation invoice {invoice.id}: the number and issue date of what it cancels")
        doc.trade.settlement.invoice_referenced_document.issuer_assigned_id = invoice.cancels_number
        doc.trade.settlement.invoice_referenced_document.issue_date_time = _date(invoice.cancels_issue_date)
    elif invoice.deductions:
        # BG-3 (BT-25, BT-26): a final invoice refers to the partial invoices it deducts; CII has room for
        # one (HeaderTradeSettlement/InvoiceReferencedDocument, at most once): the latest, the others in a note
        latest = invoice.deductions[-1]
        doc.trade.settlement.invoice_referenced_document.issuer_assigned_id = latest.number
        doc.trade.settlement.invoice_referenced_document.issue_date_time = _date(latest.issue_date)

    for i, line in enumerate(invoice.lines, start=1):
        li = LineItem()
        li.document.line_id = str(i)
        li.product.name = line.description
        li.agreement.net.amount = line.unit_price
        li.delivery.billed_quantity = (line.quantity, UNIT_CODES.get(line.unit, "C62"))
        li.settlement.trade_tax.type_code = "VAT"
        li.settlement.trade_tax.category_code = line.vat_category
        if line.vat_category != "O":  # BR-O-05: a line "not subject to VAT" carries no rate
            li.settlement.trade_tax.rate_applicable_percent = line.vat_rate
        li.settlement.monetary_summation.total_amount = line.net_amount
        doc.trade.items.add(li)

    settlement = doc.trade.settlement
    settlement.currency_code = cur
    for v in invoice.vat_breakdown:
        tax = ApplicableTradeTax()
        tax.calculated_amount = v.tax_amount
        tax.basis_amount = v.taxable_amount
        tax.type_code = "VAT"
        tax.category_code = v.category
        tax.rate_applicable_percent = v.rate  # BR-DE-14 wants it, also 0 for O
        if v.category != "S":
            tax.exemption_reason = v.note or invoice.vat_note or "exempt"
            if v.category in EXEMPTION_CODES:
                tax.exemption_reason_code = EXEMPTION_CODES[v.category]
        settlement.trade_tax.add(tax)
    means = PaymentMeans()
    means.type_code = "58"
    means.payee_account.iban = seller.iban
    settlement.payment_means.add(means)
    terms = PaymentTerms()
    terms.description = (f"Zahlbar bis {due:%d.%m.%Y}" if invoice.buyer.get("language", "de") == "de"
                         else f"Payable by {due.isoformat()}")
    terms.due = _date(due)
    settlement.terms.add(terms)

    ms = settlement.monetary_summation
    ms.line_total = invoice.net_total
    ms.tax_basis_total = (invoice.net_total, None)
    ms.tax_total = (invoice.tax_total, cur)
    if invoice.tax_total_eur is not None:
        # BT-6 / BT-111: the VAT total also in EUR, at the rate stored on the order (as the PDF states it)
        settlement.tax_currency_code = "EUR"
        ms.tax_total_other_currency.add((invoice.tax_total_eur, "EUR"))
    ms.grand_total = (invoice.gross_total, None)
    if invoice.prepaid_amount:
        ms.prepaid_total = invoice.prepaid_amount
    ms.due_amount = invoice.payable_amount  # BT-115; a cancellation invoice (381) credits it
    # drafthorse checks what it wrote against its Factur-X EN 16931 schema when given the schema's name,
    # but compiles that schema anew for every document (a third of the XML's time); compiled once here
    xml = doc.serialize(schema=None)
    etree.fromstring(xml, etree.XMLParser(schema=_en16931_schema(), resolve_entities=False))  # raises when invalid
    return xml


@functools.cache
def _en16931_schema():
    import drafthorse

    return etree.XMLSchema(file=str(Path(drafthorse.__file__).parent / "schema" / "Factur-X_1.0.07_EN16931.xsd"))


class DefaultRenderer:
    """The X-Rechnung first, then the PDF (a ZUGFeRD hybrid embedding that XML when the client asked for it)."""

    def __init__(self, seller: Seller) -> None:
        self.seller = seller

    @cached_property
    def pdf(self) -> InvoicePdf:
        # built on the first invoice: a process that only describes its subscriptions skips the font setup
        return InvoicePdf(self.seller)

    def render(self, invoice: Invoice) -> list[Rendered]:
        kind = invoice.kind if invoice.kind == "cancellation" else invoice.schedule_kind
        stem = f"{FILE_STEMS.get(kind, 'Rechnung')}-{invoice.number}"
        xml = xrechnung(invoice, self.seller)
        pdf = self.pdf.render(invoice, embed_xml=xml if invoice.buyer.get("zugferd") else None)
        return [Rendered("pdf", f"{stem}.pdf", "application/pdf", pdf),
                Rendered("xrechnung", f"{stem}.xml", "application/xml", xml)]
