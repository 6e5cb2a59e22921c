"""Running a service in-process for tests: its migrations on a fresh database, its API
over ASGI and its worker against the real broker."""
from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
from asgi_lifespan import LifespanManager

from kontor.auth import mint_token
from kontor.clock import Clock
from kontor.db import upgrade
from kontor.devinfra.postgres import drop_database, ensure_database
from kontor.service import ServiceSpec
from kontor.settings import DEV_JWT_SECRET, ServiceSettings
from kontor.testing import TestInfra, unique
from kontor.worker import Worker


def token(sub: str, *roles: str, name: str | None = None) -> str:
    return mint_token(DEV_JWT_SECRET, sub, list(roles) or ["member"], name=name)


def auth(sub: str, *roles: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token(sub, *roles)}"}


@dataclass
class RunningService:
    spec: ServiceSpec
    settings: ServiceSettings
    http: httpx.AsyncClient
    worker: Worker | None
    database: str


@contextlib.asynccontextmanager
async def fresh_database(infra: TestInfra, spec: ServiceSpec, keep: bool = False) -> AsyncIterator[str]:
    name = unique(f"t_{spec.name}_")
    await ensure_database(infra.postgres_admin_url, name)
    url = infra.database_url(name)
    await upgrade(url, spec.migrations)
    try:
        yield url
    finally:
        if not keep:
            await drop_database(infra.postgres_admin_url, name)


@contextlib.asynccontextmanager
async def running_service(
    spec: ServiceSpec,
    infra: TestInfra,
    *,
    topic_prefix: str,
    clock: Clock | None = None,
    start_worker: bool = True,
    **overrides: Any,
) -> AsyncIterator[RunningService]:
    from importlib import import_module

    async with fresh_database(infra, spec) as url:
        settings = spec.settings_cls(database_url=url, kafka_bootstrap=infra.kafka_bootstrap,
                                     topic_prefix=topic_prefix, log_format="console",
                                     consumer_retry_backoff_s=0.05, **overrides)
        module = spec.api_factory.split(":")[0]
        create_api_app = getattr(import_module(module), "create_api_app")
        app = create_api_app(settings, clock=clock)
        worker = spec.worker_factory(settings, clock=clock) if start_worker else None
        if worker:
            await worker.start()
        try:
            async with LifespanManager(app) as manager:
                async with httpx.AsyncClient(transport=httpx.ASGITransport(app=manager.app),
                                             base_url=f"http://{spec.name}.test") as http:
                    yield RunningService(spec, settings, http, worker, url)
        finally:
            if worker:
                await worker.stop()
