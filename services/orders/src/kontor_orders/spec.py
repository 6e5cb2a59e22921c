"""The orders service described once for its CLI, the dev stack, AsyncAPI and tests."""
from kontor.service import ServiceSpec
from kontor_orders.settings import OrdersSettings

SPEC = ServiceSpec.for_package("orders", settings_cls=OrdersSettings)
