"""The clients service described once for its CLI, the dev stack, AsyncAPI and tests."""
from kontor.contracts.clients import ClientRegisteredV1, ClientStandingChangedV1, ClientUpdatedV1
from kontor.service import ServiceSpec
from kontor_clients.settings import ClientsSettings

SPEC = ServiceSpec.for_package("clients", settings_cls=ClientsSettings,
                                publishes=(ClientRegisteredV1, ClientUpdatedV1, ClientStandingChangedV1))
