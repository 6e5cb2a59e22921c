"""Events of the orders service (topic kontor.orders.v1, key = order id).

Every event carries the whole order as `OrderV1`: lines, amounts, VAT, service period,
contact person, payment terms and, once active, the billing schedule, so that invoicing,
notifications and outside subscribers act without calling back.
"""
from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import ClassVar, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict

from kontor import topics
from kontor.contracts import Contract
from kontor.contracts.common import Actor, Language


class _Value(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")


class ContactPersonV1(_Value):
    name: str
    email: str


class OrderClientV1(_Value):
    client_id: UUID
    name: str
    kind: str
    vat_id: str | None = None
    country: str
    language: Language = "de"


class OrderLineV1(_Value):
    description: str
    quantity: Decimal
    unit: str
    unit_price: Decimal
    net_amount: Decimal
    # Added compatibly (issue 22): optional (offered, not ordered) and alternative lines are never in
    # net_total, the schedule or an invoice
    kind: Literal["regular", "optional", "alternative"] = "regular"


class VatV1(_Value):
    category: Literal["S", "AE", "E", "O", "Z"]
    rate: Decimal
    taxable_amount: Decimal
    tax_amount: Decimal
    note: str | None = None  # in the client's language: reverse charge, exemption, not subject


class PlannedInvoiceV1(_Value):
    seq: int
    kind: Literal["advance", "after_completion", "installment", "final", "recurring"]
    invoice_date: dt.date
    due_date: dt.date
    lines: tuple[OrderLineV1, ...]
    net_amount: Decimal
    deducted: Decimal = Decimal(0)
    period_start: dt.date | None = None
    period_end: dt.date | None = None


class InstallmentV1(_Value):
    date: dt.date
    amount: Decimal | None = None
    percentage: Decimal | None = None
    lines: tuple[int, ...] = ()  # instead of an amount or a percentage: the indexes of the order's lines it bills


class PaymentTermsV1(_Value):
    mode: Literal["after_completion", "installments", "recurring", "advance"]
    due_in_days: int
    invoice_date: dt.date | None = None
    installments: tuple[InstallmentV1, ...] = ()
    interval: Literal["month", "quarter", "year"] | None = None
    first_invoice_date: dt.date | None = None


class AttachmentV1(_Value):
    attachment_id: UUID
    filename: str
    media_type: str
    size: int
    sha256: str
    url: str | None = None


class OrderPauseV1(_Value):
    start: dt.date
    end: dt.date | None = None  # the last paused day; None: until resumed


class OrderContractV1(_Value):
    """The contract of a recurring order (issue 22): one-off or renewing automatically by `term_months` unless
    cancelled on or before `notice_deadline`; running, paused (no invoices planned for the periods beginning
    while paused), finished or cancelled."""

    kind: Literal["one_off", "auto_renew"]
    state: Literal["running", "paused", "finished", "cancelled"]
    term_months: int | None = None
    notice_months: int = 0
    notice_deadline: dt.date | None = None  # renewing: cancel on or before this day
    renews_until: dt.date | None = None  # renewing: the end of the next term
    renewals: int = 0
    pauses: tuple[OrderPauseV1, ...] = ()
    cancelled_on: dt.date | None = None


class OrderV1(_Value):
    order_id: UUID
    member_id: str
    status: str
    client: OrderClientV1
    contact_person: ContactPersonV1
    sector: str | None = None
    place_of_service: Literal["DE", "EU", "OTHER"] | None = None
    project_name: str | None = None
    special_agreement: str | None = None
    description: str | None = None
    currency: str
    lines: tuple[OrderLineV1, ...]
    net_total: Decimal
    vat: tuple[VatV1, ...] = ()
    gross_total: Decimal | None = None
    exchange_rate_eur: Decimal | None = None  # EUR per one unit of `currency`, stored on submission
    exchange_rate_date: dt.date | None = None  # the day it was stored
    service_start: dt.date | None = None
    service_end: dt.date | None = None
    confirmation_mode: Literal["send", "skip"] | None = None
    offer_valid_until: dt.date | None = None
    payment: PaymentTermsV1 | None = None
    payment_guarantee: bool = False
    schedule: tuple[PlannedInvoiceV1, ...] = ()
    activated_on: dt.date | None = None
    attachments: tuple[AttachmentV1, ...] = ()
    version: int
    # Added compatibly (issue 22), the three values: net value is `net_total` (regular lines only);
    # plan value as of `values_as_of` (recurring: net_total × billing periods begun by then; one-off:
    # net_total); order value: net of the invoices issued so far (a final invoice less its deductions)
    plan_value: Decimal | None = None
    order_value: Decimal | None = None
    values_as_of: dt.date | None = None
    # Added compatibly (issue 22): a recurring order's contract; the indexes of the lines tidied up (fully
    # invoiced, kept in the order and its values, no longer open)
    contract: OrderContractV1 | None = None
    archived_lines: tuple[int, ...] = ()


class _OrderEvent(Contract):
    topic: ClassVar[str] = topics.ORDERS
    aggregate_field: ClassVar[str] = "order_id"
    source: ClassVar[str] = "kontor/orders"

    order_id: UUID
    order: OrderV1
    occurred_at: dt.datetime
    actor: Actor


class OrderSubmittedV1(_OrderEvent):
    event_type: ClassVar[str] = "kontor.order.submitted.v1"

    flags: tuple[dict, ...] = ()  # for the advisor, e.g. minimum fee, with their figures


class OrderApprovedV1(_OrderEvent):
    event_type: ClassVar[str] = "kontor.order.approved.v1"


class OrderSentForConfirmationV1(_OrderEvent):
    event_type: ClassVar[str] = "kontor.order.sent-for-confirmation.v1"

    confirmation_url: str
    valid_until: dt.datetime


class OrderOfferExpiringV1(_OrderEvent):
    event_type: ClassVar[str] = "kontor.order.offer-expiring.v1"

    offer_valid_until: dt.date


class OrderConfirmedV1(_OrderEvent):
    event_type: ClassVar[str] = "kontor.order.confirmed.v1"


class OrderChangesRequestedV1(_OrderEvent):
    event_type: ClassVar[str] = "kontor.order.changes-requested.v1"

    message: str


class OrderRejectedV1(_OrderEvent):
    event_type: ClassVar[str] = "kontor.order.rejected.v1"

    rejected_by: Literal["advisor", "client", "offer_expired", "automatic_check"]
    reason: str


class OrderActivatedV1(_OrderEvent):
    event_type: ClassVar[str] = "kontor.order.activated.v1"


class OrderUpdatedV1(_OrderEvent):
    event_type: ClassVar[str] = "kontor.order.updated.v1"

    changes: tuple[dict, ...] = ()  # {field, before, after}


class OrderCancellationRequestedV1(_OrderEvent):
    event_type: ClassVar[str] = "kontor.order.cancellation-requested.v1"

    reason: str


class OrderCancelledV1(_OrderEvent):
    event_type: ClassVar[str] = "kontor.order.cancelled.v1"

    reason: str
    cancel_invoice_ids: tuple[UUID, ...] = ()  # issued invoices the advisor named for cancellation


class OrderCompletedV1(_OrderEvent):
    event_type: ClassVar[str] = "kontor.order.completed.v1"


class OrderRenewalNoticeDueV1(_OrderEvent):
    """The member's reminder (issue 22): the order renews automatically by `term_months` until `renews_until`
    unless cancelled on or before `notice_deadline` (the current term ends on `term_end`)."""

    event_type: ClassVar[str] = "kontor.order.renewal-notice-due.v1"

    notice_deadline: dt.date
    term_end: dt.date
    renews_until: dt.date
    term_months: int


class OrderPriceChangedV1(_OrderEvent):
    """The unit price of a line of an active recurring order changed from `effective_from` on: the planned
    invoices `replanned` (those of the periods from then on, see `order.schedule`) bill the new price; earlier,
    possibly invoiced periods keep theirs."""

    event_type: ClassVar[str] = "kontor.order.price-changed.v1"

    line: int  # the index of the order's line
    description: str
    unit_price_before: Decimal
    unit_price: Decimal
    effective_from: dt.date
    replanned: tuple[int, ...] = ()  # seqs of the planned invoices that changed
