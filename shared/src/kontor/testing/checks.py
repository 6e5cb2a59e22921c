"""Checks every service must pass; each service's test module calls them for itself."""
from __future__ import annotations

from importlib import import_module

import httpx
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from asgi_lifespan import LifespanManager

from kontor.db import create_engine
from kontor.service import ServiceSpec
from kontor.testing import TestInfra
from kontor.testing.services import fresh_database, running_service


async def check_health_and_readiness(spec: ServiceSpec, infra: TestInfra, topic_prefix: str) -> None:
    async with running_service(spec, infra, topic_prefix=topic_prefix, start_worker=False) as svc:
        health = await svc.http.get("/healthz")
        assert health.status_code == 200 and health.json() == {"status": "ok", "service": spec.name}
        ready = await svc.http.get("/readyz")
        assert ready.status_code == 200, ready.text
        assert ready.json()["checks"] == {"database": "ok", "kafka": "ok"}
        docs = await svc.http.get("/openapi.json")
        assert docs.status_code == 200 and docs.json()["info"]["title"] == f"Kontor {spec.name}"


async def check_not_ready_without_kafka(spec: ServiceSpec, infra: TestInfra) -> None:
    async with fresh_database(infra, spec) as url:
        settings = spec.settings_cls(database_url=url, kafka_bootstrap="127.0.0.1:9", log_format="console")
        app = import_module(spec.api_factory.split(":")[0]).create_api_app(settings)
        async with (LifespanManager(app) as manager,
                    httpx.AsyncClient(transport=httpx.ASGITransport(app=manager.app), base_url="http://t") as http):
            ready = await http.get("/readyz")
            assert ready.status_code == 503
            checks = ready.json()["checks"]
            assert checks["database"] == "ok" and checks["kafka"].startswith("unreachable")
            assert (await http.get("/healthz")).status_code == 200, "alive even when not ready"


async def check_migrations_match_models(spec: ServiceSpec, infra: TestInfra) -> None:
    """The Alembic head creates exactly the tables and columns the code declares."""
    metadata = import_module(spec.api_factory.split(".")[0] + ".adapters.orm").metadata
    async with fresh_database(infra, spec) as url:
        engine = create_engine(url)
        try:
            async with engine.connect() as conn:
                diff = await conn.run_sync(
                    lambda sync: compare_metadata(MigrationContext.configure(sync, opts={"compare_type": True}),
                                                  metadata))
        finally:
            await engine.dispose()
    diff = [d for d in diff if not (isinstance(d, tuple) and d[0] == "remove_table" and d[1].name == "alembic_version")]
    assert diff == [], f"models and migrations of {spec.name} differ: {diff}"
