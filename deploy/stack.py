"""The local platform without Docker (`make up`, `make infra`).

Starts PostgreSQL, Kafka, the SMTP server and (`make up`, when bootstrap fetched it; KONTOR_KEYCLOAK=0
leaves it out) Keycloak with the `kontor` realm on :8180 (reusing any already listening), creates
one database per service, runs every service's migrations, then runs each service's
API and worker processes as children with prefixed output: one API each, and as many
worker processes as `<SERVICE>_WORKERS` says (e.g. `make up INVOICING_WORKERS=2
NOTIFICATIONS_WORKERS=2`; one by default), which share their service's work, and the portal on :8100
(signing in through Keycloak when it runs, and with the development sign-in). Prints the
URLs once every service answers /readyz, with where each process serves its Prometheus metrics
(each API on its port, each worker process on a port of its own, `WORKER_HTTP_PORT`: 9101 for the
orders worker, 9111 for a second one, ...). Ctrl-C (or SIGTERM) stops the services, then the
servers it started. Data lives in .local/ and survives restarts.
"""
from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("KONTOR_ROOT", str(ROOT))
# make up is a developer's platform: the development JWT secret is accepted (a real deployment refuses it)
os.environ.setdefault("KONTOR_ENV", "development")

from kontor.db import upgrade  # noqa: E402
from kontor.devinfra import InfraError, local_dir, port_open, wait_for_port  # noqa: E402
from kontor.devinfra.kafka import LocalKafka  # noqa: E402
from kontor.devinfra.keycloak import (  # noqa: E402
    ADMIN_PASSWORD,
    ADMIN_USER,
    AUDIENCE,
    DEMO_USERS,
    NOTIFICATIONS_CLIENT,
    NOTIFICATIONS_DEV_SECRET,
    LocalKeycloak,
)
from kontor.devinfra.keycloak import distribution as keycloak_distribution  # noqa: E402
from kontor.devinfra.postgres import LocalPostgres, ensure_database  # noqa: E402
from kontor_clients.spec import SPEC as CLIENTS  # noqa: E402
from kontor_invoicing.spec import SPEC as INVOICING  # noqa: E402
from kontor_notifications.spec import SPEC as NOTIFICATIONS  # noqa: E402
from kontor_orders.spec import SPEC as ORDERS  # noqa: E402

SERVICES = (ORDERS, CLIENTS, INVOICING, NOTIFICATIONS)
SMTP_PORT = int(os.environ.get("KONTOR_SMTP_PORT", "1025"))
PORTAL_PORT = 8100  # the portal's default (KONTOR_PORTAL_HTTP_PORT); the realm file allows its redirects there
COLORS = ["36", "33", "35", "32", "34", "31", "96", "93", "95", "92"]


def say(msg: str) -> None:
    print(f"\033[1m[kontor]\033[0m {msg}", flush=True)


def count_from_env(name: str, default: int = 1) -> int:
    """A count the caller gives as an environment (or make) variable, e.g. INVOICING_WORKERS=2."""
    value = os.environ.get(name, str(default))
    if not value.isdigit() or int(value) < 1:
        raise InfraError(f"{name} must be a whole number of at least 1, not {value!r}")
    return int(value)


def worker_count(spec) -> int:
    return count_from_env(f"{spec.name.upper()}_WORKERS")


def worker_port(spec, n: int) -> int:
    """The HTTP port (/healthz, /readyz, /metrics) of worker process `n` (from 0) of a service:
    its API's port + 1000, + 10 for each further process."""
    return spec.default_port + 1000 + 10 * n


def keycloak_wanted() -> bool:
    """Keycloak runs with `make up` when bootstrap fetched it, unless KONTOR_KEYCLOAK=0."""
    if os.environ.get("KONTOR_KEYCLOAK", "1") == "0":
        return False
    try:
        keycloak_distribution()
    except InfraError as exc:
        say(f"no Keycloak: {exc}")
        return False
    return True


class Stack:
    def __init__(self, *, echo: bool = True, keycloak: bool = False) -> None:
        self.postgres = LocalPostgres()
        # the identity provider (make up): the services then verify its tokens through the realm's JWKS
        self.keycloak = LocalKeycloak() if keycloak else None
        self.client_credentials = False  # the realm has kontor-notifications (client credentials)
        nodes = count_from_env("KAFKA_NODES")
        # a cluster keeps its data apart from the single node's (a KRaft quorum is fixed when formatted)
        self.kafka = LocalKafka(nodes=nodes, name="kafka" if nodes == 1 else f"kafka-{nodes}")
        self.smtp: subprocess.Popen | None = None
        self.children: list[tuple[str, asyncio.subprocess.Process]] = []
        self.pumps: list[asyncio.Task] = []
        self.echo = echo  # False: children's output is kept in self.output instead of printed
        self.output: dict[str, list[str]] = {}

    def start_infra(self) -> None:
        ports = [("HTTP " + s.name, s.default_port) for s in SERVICES] + [("HTTP portal", PORTAL_PORT)]
        ports += [(f"HTTP {s.name} worker {n + 1}", worker_port(s, n))
                  for s in SERVICES for n in range(worker_count(s))]
        for name, port in ports:
            if port_open("127.0.0.1", port):
                raise InfraError(f"port {port} ({name}) is already taken: stop what runs there first")
        keycloak: concurrent.futures.Future[float | None] | None = None
        pool = concurrent.futures.ThreadPoolExecutor(max_workers=1)
        if self.keycloak:  # the slowest (about 35 s on two cores): started first, waited for last
            keycloak = pool.submit(self.keycloak.start)
        for name, server, where in (("PostgreSQL", self.postgres, f"127.0.0.1:{self.postgres.port}"),
                                    (f"Kafka (KRaft, {self.kafka.nodes} node{'s' if self.kafka.nodes > 1 else ''})",
                                     self.kafka, self.kafka.bootstrap)):
            seconds = server.start()
            say(f"{name} on {where} ({'already running, reused' if seconds is None else f'started in {seconds:.1f}s'})")
        if port_open("127.0.0.1", SMTP_PORT):
            say(f"SMTP on 127.0.0.1:{SMTP_PORT} (already running, reused)")
        else:
            maildir = local_dir("mail")
            log = local_dir() / "smtp.log"
            self.smtp = subprocess.Popen([sys.executable, "-m", "kontor.devinfra.smtp", "--port", str(SMTP_PORT),  # noqa: S603 - argv of our own
                                          "--maildir", str(maildir)], stdout=log.open("ab"),
                                         stderr=subprocess.STDOUT, start_new_session=True)
            wait_for_port("127.0.0.1", SMTP_PORT, 30, "SMTP server", self.smtp, log)
            say(f"SMTP on 127.0.0.1:{SMTP_PORT}, every message kept in {maildir}")
        if keycloak and self.keycloak:
            seconds = keycloak.result()
            say(f"Keycloak on {self.keycloak.url} "
                f"({'already running, reused' if seconds is None else f'started in {seconds:.1f}s'})")
            self.client_credentials = self.keycloak.ensure_documents_scope()
            if not self.client_credentials:
                say(f"Keycloak's realm (imported earlier) has no client {NOTIFICATIONS_CLIENT}: notifications "
                    "fetches documents with development tokens (remove .local/keycloak-data to import it anew)")
        pool.shutdown()

    async def prepare_databases(self) -> None:
        for spec in SERVICES:
            created = await ensure_database(self.postgres.admin_url, f"kontor_{spec.name}")
            await upgrade(self.postgres.url(f"kontor_{spec.name}"), spec.migrations)
            say(f"database kontor_{spec.name} {'created and ' if created else ''}migrated")

    def service_env(self, spec) -> dict[str, str]:
        env = {**os.environ, f"{spec.env_prefix}LOG_FORMAT": os.environ.get("KONTOR_LOG_FORMAT", "console"),
               f"{spec.env_prefix}RUN_MIGRATIONS_ON_START": "false", "PYTHONUNBUFFERED": "1",
               f"{spec.env_prefix}KAFKA_BOOTSTRAP": self.kafka.bootstrap,
               f"{spec.env_prefix}TOPIC_REPLICATION": str(self.kafka.replication),
               f"{spec.env_prefix}TOPIC_MIN_INSYNC_REPLICAS": str(self.kafka.min_insync_replicas)}
        rules = ROOT.parent / "shared" / "xrechnung"
        if spec.name == "invoicing" and rules.is_dir():
            # the official X-Rechnung rules beside the checkout: invalid invoices are held, not sent
            env.setdefault("KONTOR_INVOICING_XRECHNUNG_RULES_DIR", str(rules))
        # make demo (and make bench-billing) play 2027 through with runs "as of" its dates; a real
        # deployment refuses runs as of a later date than today
        env.setdefault(f"{spec.env_prefix}ALLOW_FUTURE_AS_OF", "true")
        if spec.name == "notifications":
            env.setdefault("KONTOR_NOTIFICATIONS_SMTP_PORT", str(SMTP_PORT))
        if self.keycloak:
            # Keycloak's RS256 tokens (the portal's users), and the HS256 development tokens of
            # kontor-token and make demo beside them (development only)
            env.setdefault(f"{spec.env_prefix}JWKS_URL", self.keycloak.jwks_url)
            env.setdefault(f"{spec.env_prefix}JWT_ISSUER", self.keycloak.issuer)
            env.setdefault(f"{spec.env_prefix}JWT_AUDIENCE", AUDIENCE)
            env.setdefault(f"{spec.env_prefix}JWT_ACCEPT_DEV_TOKENS", "true")
            if spec.name == "notifications" and self.client_credentials:
                # its token for the documents it attaches: client credentials of kontor-notifications
                env.setdefault("KONTOR_NOTIFICATIONS_OIDC_TOKEN_URL", self.keycloak.token_url)
                env.setdefault("KONTOR_NOTIFICATIONS_OIDC_CLIENT_ID", NOTIFICATIONS_CLIENT)
                env.setdefault("KONTOR_NOTIFICATIONS_OIDC_CLIENT_SECRET", NOTIFICATIONS_DEV_SECRET)
        return env

    async def start_services(self) -> None:
        for spec in SERVICES:
            await self.start_process(spec, "api")
            for n in range(worker_count(spec)):
                await self.start_process(spec, "worker", n,
                                         env={f"{spec.env_prefix}WORKER_HTTP_PORT": str(worker_port(spec, n))})
        await self.start_portal()

    async def start_portal(self) -> None:
        """The portal (`kontor-portal api` on PORTAL_PORT): sign-in through Keycloak when it runs, and the
        development sign-in (KONTOR_ENV=development) beside it."""
        env = {**os.environ, "PYTHONUNBUFFERED": "1", "KONTOR_PORTAL_HTTP_PORT": str(PORTAL_PORT),
               "KONTOR_PORTAL_LOG_FORMAT": os.environ.get("KONTOR_LOG_FORMAT", "console")}
        if self.keycloak:
            env.setdefault("KONTOR_PORTAL_OIDC_ISSUER", self.keycloak.issuer)
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "kontor_portal", "api", env=env, cwd=ROOT, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT, start_new_session=True)
        self.children.append(("portal-api", proc))
        self.pumps.append(asyncio.create_task(self._pump("portal-api", proc, COLORS[-1])))

    async def start_process(self, spec, role: str, n: int = 0, env: dict[str, str] | None = None) -> str:
        name = f"{spec.name}-{role}" + (f"-{n + 1}" if role == "worker" and n else "")
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", f"kontor_{spec.name}", role, env={**self.service_env(spec), **(env or {})},
            cwd=ROOT, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, start_new_session=True)
        self.children.append((name, proc))
        i = SERVICES.index(spec)
        color = COLORS[(2 * i + (role == "worker") + 2 * n) % len(COLORS)]
        self.pumps.append(asyncio.create_task(self._pump(name, proc, color)))
        return name

    async def stop_processes(self, prefix: str, timeout_s: float = 30) -> None:
        """Stop the children whose name starts with `prefix` (SIGTERM: they finish what they hold)."""
        stopping = [(n, p) for n, p in self.children if n.startswith(prefix)]
        for _, proc in stopping:
            if proc.returncode is None:
                proc.send_signal(signal.SIGTERM)
        for name, proc in stopping:
            try:
                await asyncio.wait_for(proc.wait(), timeout_s)
            except TimeoutError:
                say(f"{name} did not stop in {timeout_s:.0f}s; killing it")
                proc.kill()
                await proc.wait()
        self.children = [(n, p) for n, p in self.children if not n.startswith(prefix)]

    async def _pump(self, name: str, proc: asyncio.subprocess.Process, color: str) -> None:
        if proc.stdout is None:
            raise ValueError(f"{name} was started without a pipe for its output")
        async for line in proc.stdout:
            text = line.decode(errors="replace")
            if self.echo:
                sys.stdout.write(f"\033[{color}m{name:>20} |\033[0m {text}")
                sys.stdout.flush()
            else:
                self.output.setdefault(name, []).append(text)

    async def wait_ready(self, timeout_s: float = 120) -> None:
        deadline = time.monotonic() + timeout_s
        async with httpx.AsyncClient(timeout=5) as http:
            for spec in SERVICES:
                url = f"http://127.0.0.1:{spec.default_port}/readyz"
                while True:
                    self._check_children()
                    try:
                        if (await http.get(url)).status_code == 200:
                            break
                    except httpx.HTTPError:
                        pass
                    if time.monotonic() > deadline:
                        raise InfraError(f"{spec.name} not ready at {url} within {timeout_s:.0f}s")
                    await asyncio.sleep(0.3)
            if not any(name == "portal-api" for name, _ in self.children):
                return  # a stack of the services alone (the billing bench): no portal to wait for
            url = f"http://127.0.0.1:{PORTAL_PORT}/healthz"
            while True:
                self._check_children()
                with contextlib.suppress(httpx.HTTPError):
                    if (await http.get(url)).status_code == 200:
                        break
                if time.monotonic() > deadline:
                    raise InfraError(f"the portal not ready at {url} within {timeout_s:.0f}s")
                await asyncio.sleep(0.3)

    def _check_children(self) -> None:
        for name, proc in self.children:
            if proc.returncode is not None:
                raise InfraError(f"{name} exited with code {proc.returncode}")

    async def stop_services(self) -> None:
        await self.stop_processes("")
        for pump in self.pumps:
            pump.cancel()

    def stop_infra(self) -> None:
        if self.smtp and self.smtp.poll() is None:
            self.smtp.terminate()
            self.smtp.wait(10)
        if self.keycloak:
            self.keycloak.stop()
        self.kafka.stop()
        self.postgres.stop()


def banner(stack: Stack) -> None:
    lines = ["", "Kontor is up:",
             f"  portal         http://127.0.0.1:{PORTAL_PORT}   (sign in "
             + ("with a demo user below, or " if stack.keycloak else "") + "with the development sign-in)"]
    for spec in SERVICES:
        base = f"http://127.0.0.1:{spec.default_port}"
        workers = worker_count(spec)
        lines.append(f"  {spec.name:<14} {base}   (docs {base}/docs, ready {base}/readyz; "
                     f"{workers} worker process{'es' if workers > 1 else ''})")
    lines.append("Prometheus metrics:")
    for spec in SERVICES:
        workers = ", ".join(f"http://127.0.0.1:{worker_port(spec, n)}/metrics" for n in range(worker_count(spec)))
        lines.append(f"  {spec.name:<14} api http://127.0.0.1:{spec.default_port}/metrics, "
                     f"worker{'s' if worker_count(spec) > 1 else ''} {workers}")
    lines += [f"  kafka          {stack.kafka.bootstrap}", "  postgres       postgresql://kontor@127.0.0.1:15432/kontor_<service>",
              f"  smtp           127.0.0.1:{SMTP_PORT} (mail kept in .local/mail)",
              "  token          .venv/bin/kontor-token --sub member-1 --role member",
              *keycloak_lines(stack),
              "Ctrl-C stops everything.", ""]
    print("\n".join(lines), flush=True)


def keycloak_lines(stack: Stack) -> list[str]:
    if not stack.keycloak:
        return []
    kc = stack.keycloak
    lines = [f"  keycloak       {kc.url}   (realm {kc.issuer}, admin console {kc.url}/admin: "
             f"{ADMIN_USER} / {ADMIN_PASSWORD})",
             f"  sign-up        {kc.issuer}/account (new users get the role member)",
             "Demo users (realm file deploy/keycloak/kontor-realm.json):"]
    lines += [f"  {email:<26} {password:<20} {' + '.join(roles)}" for email, password, roles in DEMO_USERS]
    return lines


async def run(mode: str) -> int:
    stack = Stack(keycloak=mode == "up" and keycloak_wanted())
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await asyncio.to_thread(stack.start_infra)
        await stack.prepare_databases()
        if mode == "up":
            await stack.start_services()
            await stack.wait_ready()
            banner(stack)
        else:
            say("infrastructure is up; Ctrl-C stops it")
        while not stop.is_set():
            stack._check_children()
            with contextlib.suppress(TimeoutError):  # a second passed: check the children again
                await asyncio.wait_for(stop.wait(), 1)
        say("stopping")
        return 0
    except InfraError as exc:
        say(f"\033[31m{exc}\033[0m")
        return 1
    finally:
        await stack.stop_services()
        await asyncio.to_thread(stack.stop_infra)
        say("stopped")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("mode", choices=["up", "infra"])
    return asyncio.run(run(parser.parse_args().mode))


if __name__ == "__main__":
    raise SystemExit(main())
