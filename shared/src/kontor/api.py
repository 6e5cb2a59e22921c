"""The HTTP side every service shares: app factory, health and readiness, error answers.

`create_service_api` builds a FastAPI app whose lifespan owns the engine and the
token verifier; `ServiceContext` is what routes get through `Ctx`. Every app serves its
Prometheus metrics at `/metrics` (`kontor.metrics`) and traces its requests (`kontor.tracing`).
"""
from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import quote

import sqlalchemy as sa
from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from kontor import tracing
from kontor.auth import TokenVerifier
from kontor.clock import Clock, SystemClock
from kontor.db import create_engine, create_read_session_factory, create_session_factory, ping
from kontor.errors import Conflict, DomainError, InvalidInput
from kontor.inputs import InputGuard
from kontor.kafka import check_reachable
from kontor.logging import get_logger
from kontor.metrics import ApiMetrics
from kontor.outbox import Outbox
from kontor.settings import ServiceSettings
from kontor.topics import Topics

log = get_logger(__name__)


@dataclass
class ServiceContext:
    settings: ServiceSettings
    engine: AsyncEngine
    session_factory: async_sessionmaker[AsyncSession]
    read_session_factory: async_sessionmaker[AsyncSession]
    outbox: Outbox
    clock: Clock

    def begin(self):
        """A session in a transaction that commits on success (state and outbox together)."""
        return self.session_factory.begin()

    def read(self) -> AsyncSession:
        """A session for a request that only reads: no transaction around its statements
        (`kontor.db.create_read_session_factory`)."""
        return self.read_session_factory()


async def get_context(request: Request) -> ServiceContext:
    # async: FastAPI runs a plain `def` dependency in a thread pool, a thread hop on every request
    return request.app.state.ctx


Ctx = Annotated[ServiceContext, Depends(get_context)]


def create_service_api(
    *,
    title: str,
    description: str,
    settings: ServiceSettings,
    outbox_table: sa.Table,
    routers: Sequence[APIRouter],
    clock: Clock | None = None,
    readiness_details: Callable[[], dict] | None = None,
) -> FastAPI:
    """`readiness_details`, if given, is called on every `/readyz` and its result shown there under
    "details": information for whoever looks (e.g. whether a speed-up is active), not a readiness check."""
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = create_engine(settings.database_url)
        ctx = ServiceContext(
            settings=settings,
            engine=engine,
            session_factory=create_session_factory(engine),
            read_session_factory=create_read_session_factory(engine),
            outbox=Outbox(outbox_table, Topics(settings.topic_prefix)),
            clock=clock or SystemClock(),
        )
        app.state.ctx = ctx
        app.state.token_verifier = TokenVerifier(settings)
        log.info("api started", service=settings.service_name)
        try:
            yield
        finally:
            await engine.dispose()

    app = FastAPI(title=title, description=description, version="1.0.0", lifespan=lifespan)
    app.add_middleware(InputGuard)
    app.state.metrics = ApiMetrics(app)  # HTTP metrics by route and status, and /metrics
    tracing.instrument_app(app)
    app.include_router(health_router(settings, readiness_details))
    for router in routers:
        app.include_router(router)
    install_error_handlers(app)
    return app


def content_disposition(disposition: str, filename: str) -> str:
    """RFC 6266: an ASCII `filename` for old clients and, when the name is more than that, the
    exact name as RFC 5987 `filename*` (UTF-8, percent-encoded); quotes and control characters
    can never break out of the header."""
    fallback = "".join(c if " " <= c < "\x7f" and c not in '"\\' else "_" for c in filename) or "download"
    value = f'{disposition}; filename="{fallback}"'
    if fallback != filename:
        value += f"; filename*=UTF-8''{quote(filename, safe='')}"
    return value


def file_response(content: bytes, *, media_type: str, filename: str, sha256: str,
                  disposition: str = "attachment") -> Response:
    """A stored document with its name and its SHA-256 (RFC 3230 `Digest`) for the caller to check."""
    return Response(content, media_type=media_type, headers={
        "Content-Disposition": content_disposition(disposition, filename), "Digest": f"sha-256={sha256}"})


async def dependency_checks(engine: AsyncEngine, kafka_bootstrap: str) -> dict[str, str]:
    """Whether the database and the Kafka cluster answer (within 3 s each): "ok" or why not."""
    checks: dict[str, str] = {}

    async def database() -> None:
        await asyncio.wait_for(ping(engine), timeout=3)

    async def kafka() -> None:
        await check_reachable(kafka_bootstrap, timeout_s=3)

    for name, check in (("database", database), ("kafka", kafka)):
        try:
            await check()
            checks[name] = "ok"
        except Exception as exc:  # noqa: BLE001 - any failure means not ready; reported, not hidden
            checks[name] = f"unreachable: {type(exc).__name__}: {exc}"[:300]
    return checks


def readiness_response(checks: dict[str, str], details: Callable[[], dict] | None = None) -> JSONResponse:
    """/readyz of an API or a worker: 200 when every check is "ok", else 503; `details` inform
    and never make a process unready."""
    ready = all(v == "ok" for v in checks.values())
    if not ready:
        log.warning("not ready", checks=checks)
    body: dict[str, Any] = {"status": "ready" if ready else "not ready", "checks": checks}
    if details is not None:
        try:
            body["details"] = details()
        except Exception as exc:  # noqa: BLE001 - details inform; they never make a service unready
            log.warning("readiness details failed", error=f"{type(exc).__name__}: {exc}"[:300])
            body["details"] = {"error": f"{type(exc).__name__}: {exc}"[:300]}
    return JSONResponse(body, status_code=200 if ready else 503)


def health_router(settings: ServiceSettings, readiness_details: Callable[[], dict] | None = None) -> APIRouter:
    router = APIRouter(tags=["health"])

    @router.get("/healthz", summary="The process is alive")
    async def healthz() -> dict:
        return {"status": "ok", "service": settings.service_name}

    @router.get("/readyz", summary="The database and Kafka are reachable",
                responses={503: {"description": "a dependency is not reachable"}})
    async def readyz(ctx: Ctx) -> JSONResponse:
        return readiness_response(await dependency_checks(ctx.engine, settings.kafka_bootstrap), readiness_details)

    return router


def _json_safe(value: Any) -> Any:
    """An error's echo of the input, made serialisable whatever it was (bytes, NaN, Decimal, ...)."""
    if value is None or isinstance(value, (bool, int)):
        return value
    if isinstance(value, str):
        return value if len(value) <= 200 else value[:200] + "…"
    if isinstance(value, float):
        return value if value == value and value not in (float("inf"), float("-inf")) else str(value)
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    return str(value)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def request_invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        # FastAPI's own answer echoes the input, which may not be JSON (NaN, bytes): then the 422 itself failed.
        detail = [{"loc": _json_safe(list(e.get("loc", ()))), "msg": str(e.get("msg", "invalid")),
                   "type": str(e.get("type", "value_error")), "input": _json_safe(e.get("input"))}
                  for e in exc.errors()]
        return JSONResponse({"detail": detail}, status_code=422)

    @app.exception_handler(InvalidInput)
    async def invalid_input(_: Request, exc: InvalidInput) -> JSONResponse:
        # Same shape as FastAPI's own 422, so clients handle one format.
        detail = [{"loc": [exc.location, *field.split(".")], "msg": msg, "type": "value_error"}
                  for field, msg in exc.errors]
        return JSONResponse({"detail": detail}, status_code=422)

    @app.exception_handler(Conflict)
    async def conflict(_: Request, exc: Conflict) -> JSONResponse:
        body: dict[str, Any] = {"detail": str(exc)}
        if exc.current_status is not None:
            body["current_status"] = exc.current_status
        return JSONResponse(body, status_code=409)

    @app.exception_handler(DomainError)
    async def domain_error(_: Request, exc: DomainError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=exc.status_code)
