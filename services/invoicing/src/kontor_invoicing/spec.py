"""The invoicing service described once for its CLI, the dev stack, AsyncAPI and tests."""
from kontor.contracts import invoices as events
from kontor.service import ServiceSpec
from kontor_invoicing.entrypoints.cli import BILLING_RUN
from kontor_invoicing.settings import InvoicingSettings

SPEC = ServiceSpec.for_package("invoicing", settings_cls=InvoicingSettings, publishes=(
    events.InvoiceDraftCreatedV1, events.InvoiceChangeRequestedV1, events.InvoiceIssuedV1,
    events.InvoiceReminderSentV1, events.InvoiceDisputedV1, events.InvoiceCancelledV1,
    events.InvoicePaymentRecordedV1, events.InvoicePaidV1,
), commands=(BILLING_RUN,))
