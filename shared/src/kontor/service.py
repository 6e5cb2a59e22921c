"""The command line every service shares: `kontor-<service> migrate|api|worker|asyncapi|dlq`.

A service describes itself once in a `ServiceSpec`; the CLI, the dev stack, the
AsyncAPI generator and the tests all read that one description.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from kontor.contracts import Contract
from kontor.db import upgrade
from kontor.logging import configure_logging, get_logger
from kontor.settings import ServiceSettings

log = get_logger(__name__)

# On SIGTERM the API stops accepting at once and gives the requests in flight this long (then closes them);
# a Kubernetes terminationGracePeriodSeconds must exceed it plus the preStop pause (deploy/k8s/).
API_DRAIN_TIMEOUT_S = 15
# How long an API keeps an idle connection open (uvicorn's timeout_keep_alive), and the pool limits of
# every HTTP client a service calls another with: an idle connection kept shorter, so a client never sends
# a request on a connection the server is just closing (the request would fail with no answer).
API_KEEPALIVE_S = 5
CLIENT_LIMITS = httpx.Limits(keepalive_expiry=2.0)


@dataclass(frozen=True)
class Command:
    """A command of one service's CLI beside the shared ones (e.g. `kontor-invoicing billing-run`)."""

    name: str
    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[ServiceSettings, argparse.Namespace], int]


@dataclass(frozen=True)
class ServiceSpec:
    name: str
    title: str
    settings_cls: type[ServiceSettings]
    migrations: Path
    api_factory: str  # "module:function", called with settings
    worker_factory: Callable[..., Any]  # (settings, *, clock=None) -> Worker
    publishes: tuple[type[Contract], ...]
    consumes: Callable[[], list[tuple[str, list[type[Contract]]]]]  # (group, contracts)
    asyncapi_path: Path
    commands: tuple[Command, ...] = ()

    def settings(self, **overrides: Any) -> ServiceSettings:
        return self.settings_cls(**overrides)

    @classmethod
    def for_package(cls, name: str, *, settings_cls: type[ServiceSettings],
                    publishes: tuple[type[Contract], ...] = (),
                    commands: tuple[Command, ...] = ()) -> ServiceSpec:
        """A service laid out by the convention every Kontor service follows:
        `kontor_<name>/entrypoints/{api.py: create_api_app, worker.py: create_worker, create_router}`,
        `kontor_<name>/migrations/`, and `asyncapi.json` beside `src/`."""
        from importlib import import_module

        package = import_module(f"kontor_{name}")
        if package.__file__ is None:
            raise TypeError(f"kontor_{name} is a namespace package, not a service package")
        here = Path(package.__file__).resolve().parent

        def consumes() -> list[tuple[str, list[type[Contract]]]]:
            router = import_module(f"kontor_{name}.entrypoints.worker").create_router()
            return [(router.group, router.contracts)]

        def worker_factory(settings: ServiceSettings, *, clock: Any = None) -> Any:
            return import_module(f"kontor_{name}.entrypoints.worker").create_worker(settings, clock=clock)

        return cls(name=name, title=f"{name} service", settings_cls=settings_cls, migrations=here / "migrations",
                   api_factory=f"kontor_{name}.entrypoints.api:app_from_env", worker_factory=worker_factory,
                   publishes=publishes, consumes=consumes, asyncapi_path=here.parents[1] / "asyncapi.json",
                   commands=commands)

    @property
    def env_prefix(self) -> str:
        return self.settings_cls.model_config["env_prefix"]

    @property
    def default_port(self) -> int:
        return self.settings_cls.model_fields["http_port"].default


def main(spec: ServiceSpec, argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=f"kontor-{spec.name}", description=f"Kontor {spec.title}")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("migrate", help="apply the database migrations")
    sub.add_parser("api", help="run the HTTP API (migrates first unless disabled)")
    sub.add_parser("worker", help="run the event worker (migrates first unless disabled)")
    gen = sub.add_parser("asyncapi", help="print or write the AsyncAPI document")
    gen.add_argument("--write", action="store_true", help=f"write {spec.asyncapi_path.name}")
    from kontor import dlq

    commands = (*spec.commands, dlq.command(spec))
    for command in commands:
        command.add_arguments(sub.add_parser(command.name, help=command.help))
    args = parser.parse_args(argv)

    settings = spec.settings()
    configure_logging(settings.log_level, settings.log_format, service=spec.name)

    own = {c.name: c for c in commands}
    if args.command in own:
        return own[args.command].run(settings, args)
    if args.command in ("api", "worker"):
        from kontor.tracing import configure_tracing

        configure_tracing(spec.name)  # exporting only when the OTEL_* variables say so
    if args.command == "migrate":
        asyncio.run(upgrade(settings.database_url, spec.migrations))
    elif args.command == "api":
        import uvicorn

        if settings.run_migrations_on_start:
            asyncio.run(upgrade(settings.database_url, spec.migrations))
        log.info("starting api", url=f"http://{settings.http_host}:{settings.http_port}")
        uvicorn.run(spec.api_factory, factory=True, host=settings.http_host, port=settings.http_port,
                    log_config=None, access_log=True, timeout_graceful_shutdown=API_DRAIN_TIMEOUT_S,
                    timeout_keep_alive=API_KEEPALIVE_S)
    elif args.command == "worker":
        if settings.run_migrations_on_start:
            asyncio.run(upgrade(settings.database_url, spec.migrations))

        async def serve() -> None:
            # aiokafka clients must be created inside the running loop
            await spec.worker_factory(settings).serve()

        asyncio.run(serve())
    elif args.command == "asyncapi":
        from kontor.asyncapi import build_document

        doc = json.dumps(build_document(spec), indent=2, sort_keys=False) + "\n"
        if args.write:
            spec.asyncapi_path.write_text(doc)
            print(f"wrote {spec.asyncapi_path}", file=sys.stderr)
        else:
            sys.stdout.write(doc)
    return 0
