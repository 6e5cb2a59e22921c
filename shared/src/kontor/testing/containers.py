"""Containers for the tests: a Docker API (podman's, started here when no engine answers), Kafka and
PostgreSQL through testcontainers, compose.yaml brought up as a project of its own, and the
e-mails of a containerized mail catcher copied into a Maildir the tests read.

The images come from `KONTOR_TEST_KAFKA_IMAGE` and `KONTOR_TEST_POSTGRES_IMAGE` (the official
`apache/kafka:3.9.1` and `postgres:16-alpine` by default); without a registry, `make images` builds
stand-ins (deploy/containers.sh) and `make test` points these variables at them.
"""
from __future__ import annotations

import asyncio
import contextlib
import json
import mailbox
import os
import shutil
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from email.utils import getaddresses
from pathlib import Path
from typing import Any

import httpx

from kontor.devinfra import InfraError, free_port, local_dir, project_root
from kontor.logging import get_logger

log = get_logger(__name__)
LOCAL_IMAGES = {"kafka": "localhost/kontor-kafka:3.9.1", "postgres": "localhost/kontor-postgres:15",
                "mail": "localhost/kontor-mail:1", "python": "localhost/kontor-python:3.11",
                # the version of deploy/keycloak/pom.xml (deploy/containers.sh tags it so; tests/test_compose.py)
                "keycloak": "localhost/kontor-keycloak:26.5.6"}


def _ping(docker_host: str, timeout_s: float = 5) -> bool:
    """Whether the Docker API at `unix://PATH` answers its /_ping."""
    path = docker_host.removeprefix("unix://")
    try:
        with socket.socket(socket.AF_UNIX) as s:
            s.settimeout(timeout_s)
            s.connect(path)
            s.sendall(b"GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n")
            status = s.recv(64).split(b"\r\n", 1)[0]
    except OSError:
        return False
    return status.startswith(b"HTTP/1.") and b" 200" in status


@dataclass
class DockerApi:
    """Where the Docker API answers (`docker_host`), and how to stop it when it was started here."""

    docker_host: str
    engine: str
    _process: subprocess.Popen | None = None

    def close(self) -> None:
        if self._process and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(20)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()


def docker_api(timeout_s: float = 30) -> DockerApi | None:
    """DOCKER_HOST when set, else podman's API service on `.local/containers/podman.sock` (started now
    and stopped by `close()` unless it was already running); None without an engine."""
    if os.environ.get("DOCKER_HOST"):
        return DockerApi(os.environ["DOCKER_HOST"], "docker")
    podman = shutil.which("podman")
    if podman is None:
        return None
    sock = local_dir("containers") / "podman.sock"
    if len(str(sock)) > 100:  # a Unix socket's path has at most 107 bytes
        import hashlib

        sock = Path("/tmp") / f"kontor-podman-{hashlib.sha256(str(sock).encode()).hexdigest()[:12]}.sock"  # noqa: S108
    host = f"unix://{sock}"
    if _ping(host):
        return DockerApi(host, "podman")
    sock.unlink(missing_ok=True)
    out = (local_dir("containers") / "podman-service.log").open("ab")
    proc = subprocess.Popen([podman, "system", "service", "--time=0", host], stdout=out,
                            stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + timeout_s
    while not _ping(host):
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise InfraError(f"podman's API service did not answer on {sock} (log: {out.name})")
        time.sleep(0.1)
    return DockerApi(host, "podman", proc)


def image(kind: str) -> str:
    """The image for `kafka` or `postgres`: KONTOR_TEST_<KIND>_IMAGE; else, with podman, the local
    stand-in when `make images` built it (no registry here); else the official one."""
    official = {"kafka": "apache/kafka:3.9.1", "postgres": "postgres:16-alpine"}[kind]
    if os.environ.get(f"KONTOR_TEST_{kind.upper()}_IMAGE"):
        return os.environ[f"KONTOR_TEST_{kind.upper()}_IMAGE"]
    podman = shutil.which("podman")
    if podman and subprocess.run([podman, "image", "exists", LOCAL_IMAGES[kind]], check=False).returncode == 0:
        return LOCAL_IMAGES[kind]
    return official


def start_kafka(image_name: str, timeout_s: float = 120) -> tuple[object, str]:
    """A KRaft Kafka container configured as the official apache/kafka image reads it (KAFKA_*):
    its client listener is published on a free port of 127.0.0.1 and advertised as that address."""
    from testcontainers.core.container import DockerContainer
    from testcontainers.core.wait_strategies import LogMessageWaitStrategy

    port = free_port()
    env = {"KAFKA_NODE_ID": "1", "KAFKA_PROCESS_ROLES": "broker,controller",
           "KAFKA_LISTENERS": "PLAINTEXT://:9092,CONTROLLER://:9093,HOST://:19092",
           "KAFKA_ADVERTISED_LISTENERS": f"PLAINTEXT://localhost:9092,HOST://127.0.0.1:{port}",
           "KAFKA_LISTENER_SECURITY_PROTOCOL_MAP": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,HOST:PLAINTEXT",
           "KAFKA_CONTROLLER_LISTENER_NAMES": "CONTROLLER", "KAFKA_INTER_BROKER_LISTENER_NAME": "PLAINTEXT",
           "KAFKA_CONTROLLER_QUORUM_VOTERS": "1@localhost:9093", "KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR": "1",
           "KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR": "1", "KAFKA_TRANSACTION_STATE_LOG_MIN_ISR": "1",
           "KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS": "0", "KAFKA_NUM_PARTITIONS": "3"}
    container = DockerContainer(image_name)
    container.ports["19092"] = ("127.0.0.1", port)  # type: ignore[assignment]  # the Docker SDK takes (ip, port)
    for key, value in env.items():
        container.with_env(key, value)
    container.waiting_for(LogMessageWaitStrategy("Kafka Server started").with_startup_timeout(int(timeout_s)))
    _started(container)
    return container, f"127.0.0.1:{port}"


def start_postgres(image_name: str) -> tuple[object, str]:
    from testcontainers.postgres import PostgresContainer

    container = PostgresContainer(image_name, username="kontor", password="kontor", dbname="postgres", driver=None)
    container.ports["5432"] = ("127.0.0.1", free_port())  # type: ignore[assignment]  # on loopback only
    _started(container)
    try:
        url = container.get_connection_url().replace("localhost", "127.0.0.1")
    except BaseException:
        container.stop()
        raise
    return container, url


def _started(container: Any) -> None:
    """start(), and when the wait for it fails, the container removed (with its volumes) all the same."""
    try:
        container.start()
    except BaseException:
        try:
            container.stop()
        except Exception:  # it may never have been created; the start's error is the one raised
            log.exception("removing a container that did not start failed")
        raise


# compose.yaml as a project of its own ---------------------------------------------------------------

PORTS = ("KAFKA_PORT", "POSTGRES_PORT", "SMTP_PORT", "MAIL_UI_PORT", "ORDERS_PORT", "CLIENTS_PORT",
         "INVOICING_PORT", "NOTIFICATIONS_PORT", "PORTAL_PORT", "KEYCLOAK_PORT")


@dataclass
class ComposeProject:
    """compose.yaml up under its own project name, every published port a free one."""

    name: str
    env: dict[str, str]
    ports: dict[str, int] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)

    def url(self, port_variable: str) -> str:
        return f"http://127.0.0.1:{self.ports[port_variable]}"

    def _script(self, *args: str, timeout_s: float) -> subprocess.CompletedProcess:
        script = project_root() / "deploy" / "containers.sh"
        return subprocess.run(["bash", str(script), *args], env=self.env, capture_output=True, text=True,
                              timeout=timeout_s, check=False)

    def up(self, timeout_s: float = 600) -> None:
        started = time.monotonic()
        done = self._script("compose-up", self.name, timeout_s=timeout_s)
        self.timings["up_s"] = time.monotonic() - started
        if done.returncode != 0:
            raise InfraError(f"compose-up {self.name} failed ({done.returncode}):\n{done.stderr[-4000:]}")

    def down(self) -> None:
        started = time.monotonic()
        done = self._script("compose-down", self.name, timeout_s=300)
        self.timings["down_s"] = time.monotonic() - started
        if done.returncode != 0:
            raise InfraError(f"compose-down {self.name} failed ({done.returncode}):\n{done.stderr[-4000:]}")

    def containers(self) -> list[dict]:
        """`podman ps -a` of the project's containers, as JSON."""
        out = subprocess.run(["podman", "ps", "-a", "--format", "json", "--filter",
                              f"label=io.podman.compose.project={self.name}"],
                             capture_output=True, text=True, check=True).stdout
        return json.loads(out or "[]")

    def restarts(self, container: str) -> int:
        """How often the container was restarted (its restart policy)."""
        return int(subprocess.run(["podman", "inspect", "--format", "{{.RestartCount}}", container],
                                  capture_output=True, text=True, check=True).stdout.strip())

    def leftovers(self) -> dict[str, list[str]]:
        """What of the project is still there: containers, volumes, networks."""
        label = f"label=io.podman.compose.project={self.name}"
        found = {}
        for kind, argv in (("containers", ["ps", "-a"]), ("volumes", ["volume", "ls"]),
                           ("networks", ["network", "ls"])):
            names = subprocess.run(["podman", *argv, "--format", "{{.Name}}" if kind != "containers"
                                    else "{{.Names}}", "--filter", label], capture_output=True, text=True,
                                   check=True).stdout.split()
            named = subprocess.run(["podman", *argv, "--format", "{{.Name}}" if kind != "containers"
                                    else "{{.Names}}"], capture_output=True, text=True, check=True).stdout.split()
            found[kind] = sorted(set(names) | {n for n in named if n.startswith(f"{self.name}_")})
        return found


def compose_project(name: str, **settings: str) -> ComposeProject:
    """A project of compose.yaml on the local images, each port a free one of 127.0.0.1."""
    ports = {variable: free_port() for variable in PORTS}
    env = {**os.environ, **{k: str(v) for k, v in ports.items()}, **settings,
           "KAFKA_IMAGE": LOCAL_IMAGES["kafka"], "POSTGRES_IMAGE": LOCAL_IMAGES["postgres"],
           "MAIL_IMAGE": LOCAL_IMAGES["mail"], "PYTHON_IMAGE": LOCAL_IMAGES["python"],
           "KEYCLOAK_IMAGE": LOCAL_IMAGES["keycloak"]}
    return ComposeProject(name, env, ports)


# e-mails from the mail catcher's HTTP API (Mailpit's shape) into a Maildir ----------------------------

@contextlib.asynccontextmanager
async def mail_copied(api: str, maildir: Path, interval_s: float = 0.3) -> AsyncIterator[Callable[[], int]]:
    """Copies every message the catcher at `api` lists (GET /api/v1/messages, /api/v1/message/<ID>/raw)
    into `maildir` while the block runs, oldest first; a message without the X-Kontor-Envelope-To
    header (Mailpit's) gets one from its recipients. Yields how many were copied so far."""
    for sub in ("tmp", "new", "cur"):
        (maildir / sub).mkdir(parents=True, exist_ok=True)
    box = mailbox.Maildir(maildir, create=False)
    seen: set[str] = set()

    async def copy_new(http: httpx.AsyncClient) -> None:
        listed = (await http.get("/api/v1/messages", params={"limit": 1000})).raise_for_status().json()
        for summary in reversed(listed["messages"]):  # newest first in the listing
            if summary["ID"] in seen:
                continue
            raw = (await http.get(f"/api/v1/message/{summary['ID']}/raw")).raise_for_status().content
            if b"\nX-Kontor-Envelope-To:" not in raw.split(b"\r\n\r\n", 1)[0].replace(b"\r\n", b"\n"):
                to = [a.get("Address", "") for k in ("To", "Cc", "Bcc") for a in summary.get(k) or []]
                raw = f"X-Kontor-Envelope-To: {', '.join(a for _, a in getaddresses(to) if a)}\r\n".encode() + raw
            box.add(raw)
            seen.add(summary["ID"])

    async def loop(http: httpx.AsyncClient) -> None:
        while True:
            try:
                await copy_new(http)
            except httpx.HTTPError as e:  # the catcher is polled again; the journey's waits time out if it stays away
                log.warning("mail catcher not readable", api=api, error=str(e))
            await asyncio.sleep(interval_s)

    async with httpx.AsyncClient(base_url=api, timeout=10) as http:
        task = asyncio.create_task(loop(http))
        try:
            yield lambda: len(seen)
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
