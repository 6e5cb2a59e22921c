"""The orders service described once for its CLI, the dev stack, AsyncAPI and tests."""
from pathlib import Path

from kontor.service import ServiceSpec
from kontor_orders.settings import OrdersSettings

HERE = Path(__file__).resolve().parent


def _consumes():
    from kontor_orders.entrypoints.worker import create_router

    router = create_router()
    return [(router.group, router.contracts)]


def _worker(settings):
    from kontor_orders.entrypoints.worker import create_worker

    return create_worker(settings)


SPEC = ServiceSpec(
    name="orders",
    title="orders service",
    settings_cls=OrdersSettings,
    migrations=HERE / "migrations",
    api_factory="kontor_orders.entrypoints.api:app_from_env",
    worker_factory=_worker,
    publishes=(),  # the order lifecycle events come with the orders lifecycle
    consumes=_consumes,
    asyncapi_path=HERE.parents[1] / "asyncapi.json",
)
