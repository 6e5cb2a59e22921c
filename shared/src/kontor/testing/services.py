"""Running a service in-process for tests: its migrations on a fresh database, its API
over ASGI (and, with `serve_http`, on a real port too) and its worker against the real broker
(with `worker_http_port`, its /healthz, /readyz and /metrics on that port, as `kontor-<service> worker`
serves them)."""
from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable
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
from kontor.testing import TestInfra, eventually, free_port, unique
from kontor.worker import Worker


def token(sub: str, *roles: str, name: str | None = None) -> str:
    return mint_token(DEV_JWT_SECRET, sub, list(roles) or ["member"], name=name)


def auth(sub: str, *roles: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token(sub, *roles)}"}


async def ok(response: Awaitable[httpx.Response] | httpx.Response, *expected: int) -> Any:
    """The JSON of an answer whose status is one of `expected` (default 200 or 201), else an
    assertion naming the request and the answer; None for an empty body (204)."""
    r = await response if not isinstance(response, httpx.Response) else response
    assert r.status_code in (expected or (200, 201)), (r.request.method, str(r.request.url), r.status_code, r.text)
    return r.json() if r.content else None


async def draft_of_active_order(orders: httpx.AsyncClient, invoicing: httpx.AsyncClient, body: dict, *,
                                member: dict[str, str], advisor: dict[str, str], as_of: str,
                                timeout_s: float = 60) -> tuple[dict, dict]:
    """Create `body` as an order once orders knows its client, submit it, have it approved (its
    confirmation skipped, so it becomes active), and run billing as of `as_of` until the order's
    first draft invoice exists: the order and that draft."""
    async def accepted() -> Any:
        r = await orders.post("/orders", json=body, headers=member)
        assert r.status_code == 201 or "unknown client" in r.text, r.text  # refused while the client is not yet known
        return r.json() if r.status_code == 201 else None

    order: dict = await eventually(accepted, what="orders knowing the order's client")
    oid = order["order_id"]
    await ok(orders.post(f"/orders/{oid}/submit", headers=member))
    approved = await ok(orders.post(f"/orders/{oid}/approve", headers=advisor))
    assert approved["status"] == "active", approved

    async def drafted() -> Any:
        await ok(invoicing.post("/billing-runs", json={"as_of": as_of}, headers=advisor), 200, 202)
        found = await ok(invoicing.get("/invoices", params={"order_id": oid}, headers=member))
        return found[0] if found else None

    draft: dict = await eventually(drafted, timeout_s=timeout_s, interval_s=0.5, what="the order's draft invoice")
    return approved, draft


@dataclass
class RunningService:
    spec: ServiceSpec
    settings: ServiceSettings
    http: httpx.AsyncClient
    worker: Worker | None
    database: str
    base_url: str | None = None  # the real HTTP address, with serve_http
    worker_url: str | None = None  # the worker's HTTP address, with worker_http_port


@contextlib.asynccontextmanager
async def _served(app, port: int) -> AsyncIterator[None]:
    """The app on 127.0.0.1:port with uvicorn; its lifespan is already running."""
    import uvicorn

    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, lifespan="off", log_config=None,
                                           access_log=False))
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()  # raises why it could not start
        await asyncio.sleep(0.02)
    try:
        yield
    finally:
        server.should_exit = True
        await task


async def _listening(task: asyncio.Task, url: str, timeout_s: float = 10) -> None:
    """Until the server of `task` answers /healthz at `url` (raising why, should it end)."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    async with httpx.AsyncClient(timeout=1) as client:
        while True:
            if task.done():
                task.result()
                raise RuntimeError(f"the server for {url} ended before it answered")
            try:
                if (await client.get(f"{url}/healthz")).status_code == 200:
                    return
            except httpx.TransportError:
                if asyncio.get_running_loop().time() > deadline:
                    raise
            await asyncio.sleep(0.05)


@contextlib.asynccontextmanager
async def fresh_database(infra: TestInfra, spec: ServiceSpec, keep: bool = False,
                         revision: str = "head") -> AsyncIterator[str]:
    """A database of its own, migrated up to `revision`, dropped afterwards unless `keep`."""
    name = unique(f"t_{spec.name}_")
    await ensure_database(infra.postgres_admin_url, name)
    url = infra.database_url(name)
    await upgrade(url, spec.migrations, revision)
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
    serve_http: bool = False,
    **overrides: Any,
) -> AsyncIterator[RunningService]:
    """With `serve_http`, the API also listens on a free port of 127.0.0.1 and the service's
    `public_base_url` (links in events and e-mails) points there, so other services and the
    test reach it as they would in production."""
    from importlib import import_module

    base_url = None
    if serve_http:
        port = free_port()
        base_url = f"http://127.0.0.1:{port}"
        overrides.setdefault("public_base_url", base_url)

    async with fresh_database(infra, spec) as url:
        settings = spec.settings_cls(database_url=url, kafka_bootstrap=infra.kafka_bootstrap,
                                     topic_prefix=topic_prefix, log_format="console",
                                     consumer_retry_backoff_s=0.05, **overrides)
        module = spec.api_factory.split(":")[0]
        create_api_app = import_module(module).create_api_app
        app = create_api_app(settings, clock=clock)
        worker = spec.worker_factory(settings, clock=clock) if start_worker else None
        worker_http: asyncio.Task | None = None
        worker_url = None
        if worker:
            await worker.start()
            if settings.worker_http_port:
                worker_http = asyncio.create_task(worker.serve_http(settings.worker_http_port))
                worker_url = f"http://127.0.0.1:{settings.worker_http_port}"
                await _listening(worker_http, worker_url)
        try:
            async with LifespanManager(app) as manager, contextlib.AsyncExitStack() as stack:
                if serve_http:
                    await stack.enter_async_context(_served(manager.app, port))
                async with httpx.AsyncClient(transport=httpx.ASGITransport(app=manager.app),
                                             base_url=f"http://{spec.name}.test") as http:
                    yield RunningService(spec, settings, http, worker, url, base_url, worker_url)
        finally:
            if worker_http:
                worker_http.cancel()
                await asyncio.gather(worker_http, return_exceptions=True)
            if worker:
                await worker.stop()
