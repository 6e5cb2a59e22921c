"""The invoicing service described once for its CLI, the dev stack, AsyncAPI and tests."""
from kontor.service import ServiceSpec
from kontor_invoicing.settings import InvoicingSettings

SPEC = ServiceSpec.for_package("invoicing", settings_cls=InvoicingSettings)
