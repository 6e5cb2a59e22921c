"""The clients service described once for its CLI, the dev stack, AsyncAPI and tests."""
from pathlib import Path

from kontor.contracts.clients import ClientRegisteredV1, ClientStandingChangedV1, ClientUpdatedV1
from kontor.service import ServiceSpec
from kontor_clients.settings import ClientsSettings

HERE = Path(__file__).resolve().parent


def _consumes():
    from kontor_clients.entrypoints.worker import create_router

    router = create_router()
    return [(router.group, router.contracts)]


def _worker(settings):
    from kontor_clients.entrypoints.worker import create_worker

    return create_worker(settings)


SPEC = ServiceSpec(
    name="clients",
    title="clients service",
    settings_cls=ClientsSettings,
    migrations=HERE / "migrations",
    api_factory="kontor_clients.entrypoints.api:app_from_env",
    worker_factory=_worker,
    publishes=(ClientRegisteredV1, ClientUpdatedV1, ClientStandingChangedV1),
    consumes=_consumes,
    asyncapi_path=HERE.parents[1] / "asyncapi.json",
)
