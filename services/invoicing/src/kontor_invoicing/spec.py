"""The invoicing service described once for its CLI, the dev stack, AsyncAPI and tests."""
from pathlib import Path

from kontor.service import ServiceSpec
from kontor_invoicing.settings import InvoicingSettings

HERE = Path(__file__).resolve().parent


def _consumes():
    from kontor_invoicing.entrypoints.worker import create_router

    router = create_router()
    return [(router.group, router.contracts)]


def _worker(settings):
    from kontor_invoicing.entrypoints.worker import create_worker

    return create_worker(settings)


SPEC = ServiceSpec(
    name="invoicing",
    title="invoicing service",
    settings_cls=InvoicingSettings,
    migrations=HERE / "migrations",
    api_factory="kontor_invoicing.entrypoints.api:app_from_env",
    worker_factory=_worker,
    publishes=(),
    consumes=_consumes,
    asyncapi_path=HERE.parents[1] / "asyncapi.json",
)
