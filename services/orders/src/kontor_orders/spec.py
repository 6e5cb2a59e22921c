"""The orders service described once for its CLI, the dev stack, AsyncAPI and tests."""
from kontor.contracts import orders as events
from kontor.service import ServiceSpec
from kontor_orders.settings import OrdersSettings

SPEC = ServiceSpec.for_package("orders", settings_cls=OrdersSettings, publishes=(
    events.OrderSubmittedV1, events.OrderApprovedV1, events.OrderSentForConfirmationV1, events.OrderOfferExpiringV1,
    events.OrderConfirmedV1, events.OrderChangesRequestedV1, events.OrderRejectedV1, events.OrderActivatedV1,
    events.OrderUpdatedV1, events.OrderCancellationRequestedV1, events.OrderCancelledV1, events.OrderCompletedV1,
    events.OrderPriceChangedV1, events.OrderRenewalNoticeDueV1,
))
