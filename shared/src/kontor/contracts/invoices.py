"""Events of the invoicing service (topic kontor.invoices.v1, key = invoice id).

Amounts are Decimal, serialised as strings, in the invoice's currency and rounded to
its minor unit. Every event names the invoice's client, order and member, so that a
subscriber (the clients service's receivables ledger, notifications, an accounting
system) can act on it without calling back.
"""
from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import ClassVar, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict

from kontor import topics
from kontor.contracts import Contract
from kontor.contracts.common import Actor

# EN 16931 VAT category codes (UNTDID 5305) the cooperative uses.
VatCategory = Literal["S", "AE", "E", "O", "Z"]


class _Value(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")


class VatBreakdownV1(_Value):
    category: VatCategory
    rate: Decimal
    taxable_amount: Decimal
    tax_amount: Decimal
    exemption_reason: str | None = None


class InvoiceLineV1(_Value):
    position: int
    description: str
    quantity: Decimal
    unit: str
    unit_price: Decimal
    net_amount: Decimal
    vat_category: VatCategory
    vat_rate: Decimal


class InvoiceDocumentV1(_Value):
    """A document of the issued invoice by reference: fetch it from `url` (a token with the scope
    documents:read will do) and check its SHA-256. `attachment`: a file the member or an advisor
    added to the draft, to be sent with the invoice."""

    kind: Literal["pdf", "xrechnung", "attachment"]
    filename: str
    media_type: str
    sha256: str
    url: str | None = None
    attachment_id: UUID | None = None  # an attachment's id
    size: int | None = None  # an attachment's bytes


class DeductedInvoiceV1(_Value):
    """A partial (down-payment) invoice that a final invoice deducts (§ 14 Abs. 5 UStG)."""

    invoice_id: UUID
    number: str
    issue_date: dt.date
    net_amount: Decimal
    vat_breakdown: tuple[VatBreakdownV1, ...] = ()
    gross_amount: Decimal


class InvoiceV1(_Value):
    """An issued invoice or cancellation invoice as subscribers see it."""

    invoice_id: UUID
    number: str | None  # None for a draft
    kind: Literal["invoice", "cancellation"] = "invoice"
    order_id: UUID
    member_id: str
    client_id: UUID
    client_name: str
    currency: str
    issue_date: dt.date | None  # None for a draft: see invoice_date
    due_date: dt.date | None
    invoice_date: dt.date | None = None
    status: str | None = None
    reminders_sent: int = 0
    prepaid_amount: Decimal = Decimal(0)
    project_name: str | None = None
    contact_name: str | None = None
    contact_email: str | None = None
    invoice_email: str | None = None
    language: str | None = None
    service_period_start: dt.date | None = None
    service_period_end: dt.date | None = None
    net_total: Decimal
    tax_total: Decimal
    gross_total: Decimal
    # what is still to be paid: the gross total less earlier installments (final invoice)
    amount_due: Decimal
    vat_breakdown: tuple[VatBreakdownV1, ...] = ()
    lines: tuple[InvoiceLineV1, ...] = ()
    documents: tuple[InvoiceDocumentV1, ...] = ()
    # an invoice in another currency than EUR: its VAT total in EUR (BT-111, to the cent) at the rate the
    # order stored, EUR per one unit of `currency` (1 USD = 0.92 EUR), and the day it was stored
    tax_total_eur: Decimal | None = None
    exchange_rate_eur: Decimal | None = None
    exchange_rate_date: dt.date | None = None
    cancels_invoice_id: UUID | None = None
    cancels_number: str | None = None
    # Added compatibly (issue 18). status `cancellation`: an issued cancellation invoice, never owed
    # (amount_due 0; its amounts are those of its X-Rechnung, type 381, positive).
    # installment | final | ... as the order's schedule planned it; cancellation for a cancellation invoice
    schedule_kind: str | None = None
    installments: int | None = None  # installment or final invoice: how many invoices the order's schedule has
    # final invoice: every partial invoice it deducts (their gross adds up to prepaid_amount)
    deductions: tuple[DeductedInvoiceV1, ...] = ()


class _InvoiceEvent(Contract):
    topic: ClassVar[str] = topics.INVOICES
    aggregate_field: ClassVar[str] = "invoice_id"
    source: ClassVar[str] = "kontor/invoicing"

    invoice_id: UUID
    client_id: UUID
    order_id: UUID
    member_id: str
    occurred_at: dt.datetime
    actor: Actor


class InvoiceIssuedV1(_InvoiceEvent):
    event_type: ClassVar[str] = "kontor.invoice.issued.v1"

    invoice: InvoiceV1


class InvoicePaymentRecordedV1(_InvoiceEvent):
    """A payment was booked against an invoice; totals are cumulative, so the event is
    meaningful alone (a reader sets its state from it, never adds to it)."""

    event_type: ClassVar[str] = "kontor.invoice.payment-recorded.v1"

    payment_id: UUID
    number: str
    currency: str
    amount: Decimal
    received_on: dt.date
    paid_total: Decimal
    open_amount: Decimal
    overpaid_amount: Decimal = Decimal(0)


class InvoicePaidV1(_InvoiceEvent):
    event_type: ClassVar[str] = "kontor.invoice.paid.v1"

    number: str
    currency: str
    paid_total: Decimal
    paid_on: dt.date


class InvoiceCancelledV1(_InvoiceEvent):
    """The invoice was cancelled by a cancellation invoice issued in the same transaction."""

    event_type: ClassVar[str] = "kontor.invoice.cancelled.v1"

    number: str
    currency: str
    reason: str
    cancellation: InvoiceV1
    refund_due: Decimal = Decimal(0)


class InvoiceDraftCreatedV1(_InvoiceEvent):
    """A draft for a planned invoice; the member checks it before `invoice_date`."""

    event_type: ClassVar[str] = "kontor.invoice.draft-created.v1"

    invoice: InvoiceV1  # number empty, dates planned
    check_until: dt.date


class InvoiceChangeRequestedV1(_InvoiceEvent):
    event_type: ClassVar[str] = "kontor.invoice.change-requested.v1"

    message: str
    validation_errors: tuple[str, ...] = ()  # when the documents failed the X-Rechnung rules


class InvoiceReminderSentV1(_InvoiceEvent):
    event_type: ClassVar[str] = "kontor.invoice.reminder-sent.v1"

    number: str
    reminder: int  # 1, 2, 3 ...
    due_date: dt.date
    open_amount: Decimal
    currency: str


class InvoiceDisputedV1(_InvoiceEvent):
    event_type: ClassVar[str] = "kontor.invoice.disputed.v1"

    number: str
    objection: str
