"""Test infrastructure: real Kafka, PostgreSQL and SMTP for service and cross-service tests.

Where they come from, in this order:
1. environment variables: `KONTOR_TEST_KAFKA_BOOTSTRAP`, `KONTOR_TEST_POSTGRES_URL`
   (an admin DSN such as `postgresql://user:pw@host:5432/postgres`), `KONTOR_TEST_SMTP`
   (`host:port`) with `KONTOR_TEST_MAILDIR` when the SMTP server is ours;
2. testcontainers, when a Docker engine answers (DOCKER_HOST, or the default socket), or when asked
   for (`provide_infra("testcontainers")`, `KONTOR_TEST_INFRA=testcontainers`: then podman's API
   service is started if no engine answers); images from `KONTOR_TEST_KAFKA_IMAGE` and
   `KONTOR_TEST_POSTGRES_IMAGE` (see kontor.testing.containers);
3. the local processes of `deploy/` (`kontor.devinfra`), started once per test session
   and stopped at its end (servers that were already running are reused and left alone).

Every test gets fresh databases and its own topic prefix, so runs never collide.
"""
from __future__ import annotations

import asyncio
import inspect
import os
import subprocess
import sys
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy.engine import make_url

from kontor.devinfra import InfraError, free_port, local_dir, port_open, wait_for_port
from kontor.logging import get_logger

log = get_logger(__name__)
T = TypeVar("T")


@dataclass
class TestInfra:
    __test__ = False  # not a pytest test class

    kafka_bootstrap: str
    postgres_admin_url: str  # plain libpq/asyncpg DSN to the maintenance database
    smtp_host: str
    smtp_port: int
    maildir: Path | None
    source: str
    timings: dict[str, float] = field(default_factory=dict)
    # the local server processes (kontor.devinfra), for tests that restart or crash them; None elsewhere
    postgres_server: Any = None
    kafka_server: Any = None
    _stoppers: list[Callable[[], None]] = field(default_factory=list)

    def database_url(self, name: str) -> str:
        """SQLAlchemy asyncpg URL of database `name` on the test server."""
        url = make_url(self.postgres_admin_url).set(drivername="postgresql+asyncpg", database=name)
        return url.render_as_string(hide_password=False)

    def close(self) -> None:
        for stop in reversed(self._stoppers):
            try:
                stop()
            except Exception:
                log.exception("stopping test infrastructure failed")
        self._stoppers.clear()


def _docker_answers() -> bool:
    try:
        result = subprocess.run(["docker", "info", "--format", "{{.ServerVersion}}"], capture_output=True,
                                timeout=10, text=True)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return result.returncode == 0 and bool(result.stdout.strip())


def provide_infra(source: str | None = None) -> TestInfra:
    """The test infrastructure; `source` ("env", "testcontainers", "local") overrides the order above."""
    source = source or os.environ.get("KONTOR_TEST_INFRA") or None
    if source == "testcontainers":
        return _from_testcontainers()
    if source == "local":
        return _from_local_processes()
    if os.environ.get("KONTOR_TEST_KAFKA_BOOTSTRAP") and os.environ.get("KONTOR_TEST_POSTGRES_URL"):
        smtp = os.environ.get("KONTOR_TEST_SMTP", "127.0.0.1:1025")
        host, port = smtp.rsplit(":", 1)
        maildir = os.environ.get("KONTOR_TEST_MAILDIR")
        return TestInfra(os.environ["KONTOR_TEST_KAFKA_BOOTSTRAP"], os.environ["KONTOR_TEST_POSTGRES_URL"],
                         host, int(port), Path(maildir) if maildir else None, "env")
    if os.environ.get("KONTOR_TEST_NO_DOCKER") != "1" and _docker_answers():
        return _from_testcontainers()
    return _from_local_processes()


def _from_testcontainers() -> TestInfra:
    import time

    from kontor.testing import containers

    api = containers.docker_api()
    if api is None:
        raise InfraError("no Docker API: set DOCKER_HOST, or install podman (make images does)")
    infra = TestInfra("", "", "127.0.0.1", free_port(), None, f"testcontainers ({api.engine})")
    infra._stoppers.append(api.close)
    os.environ["DOCKER_HOST"] = api.docker_host
    if api.engine == "podman":  # the reaper's image cannot be pulled without a registry; we stop ours
        os.environ.setdefault("TESTCONTAINERS_RYUK_DISABLED", "true")
    # the published ports on this machine (testcontainers would take this machine for a container otherwise)
    os.environ.setdefault("TESTCONTAINERS_CONNECTION_MODE", "docker_host")
    try:
        for kind, start in (("postgres", containers.start_postgres), ("kafka", containers.start_kafka)):
            started = time.monotonic()
            container, address = start(containers.image(kind))
            infra._stoppers.append(container.stop)  # type: ignore[attr-defined]
            infra.timings[f"{kind}_start_s"] = time.monotonic() - started
            if kind == "kafka":
                infra.kafka_bootstrap = address
            else:
                infra.postgres_admin_url = address
        _start_smtp(infra)
    except BaseException:
        infra.close()
        raise
    return infra


def _from_local_processes() -> TestInfra:
    from kontor.devinfra.kafka import LocalKafka
    from kontor.devinfra.postgres import LocalPostgres

    kafka, postgres = LocalKafka(), LocalPostgres()
    infra = TestInfra(kafka.bootstrap, postgres.admin_url, "127.0.0.1", free_port(), None, "local",
                      postgres_server=postgres, kafka_server=kafka)
    for name, server in (("postgres", postgres), ("kafka", kafka)):
        seconds = server.start()
        if seconds is not None:  # we started it, so we stop it; a reused server is left alone
            infra._stoppers.append(server.stop)
            infra.timings[f"{name}_start_s"] = seconds
    _start_smtp(infra)
    return infra


def _start_smtp(infra: TestInfra) -> None:
    """A private SMTP server for this test session, writing to its own Maildir."""
    maildir = local_dir("test-mail", uuid.uuid4().hex[:8])
    log_path = maildir.parent / f"{maildir.name}.log"
    proc = subprocess.Popen(
        [sys.executable, "-m", "kontor.devinfra.smtp", "--host", infra.smtp_host, "--port", str(infra.smtp_port),
         "--maildir", str(maildir)], stdout=log_path.open("ab"), stderr=subprocess.STDOUT,
    )
    wait_for_port(infra.smtp_host, infra.smtp_port, 30, "SMTP server", proc, log_path)
    infra.maildir = maildir

    def stop() -> None:
        proc.terminate()
        proc.wait(10)

    infra._stoppers.append(stop)


def unique(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:10]}"


async def eventually(probe: Callable[[], Awaitable[T] | T], *, timeout_s: float = 20, interval_s: float = 0.1,
                     what: str = "condition") -> T:
    """Poll `probe` (sync or async) until it returns a truthy value (and return it), or fail with its last result."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    last: Any = None
    while True:
        last = probe()
        if inspect.isawaitable(last):
            last = await last
        if last:
            return last
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"{what} not reached within {timeout_s}s; last value: {last!r}")
        await asyncio.sleep(interval_s)


__all__ = ["InfraError", "TestInfra", "eventually", "free_port", "port_open", "provide_infra", "unique"]
