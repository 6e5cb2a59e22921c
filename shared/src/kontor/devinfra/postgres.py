"""PostgreSQL from Debian's package, a project-local cluster under `.local/postgres`.

The server refuses to run as root, so when we are root every server command runs as
the `postgres` user the package creates, and the data directory belongs to it. The
cluster's superuser is `kontor` with trust authentication on 127.0.0.1 only.
"""
from __future__ import annotations

import asyncio
import contextlib
import glob
import os
import pwd
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import asyncpg

from kontor.devinfra import InfraError, local_dir, port_open, proc_stat, wait_for_port

SUPERUSER = "kontor"


def _bindir() -> Path:
    env = os.environ.get("KONTOR_PG_BINDIR")
    if env:
        return Path(env)
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/postgres"),
                        key=lambda p: int(Path(p).parent.parent.name))
    if candidates:
        return Path(candidates[-1]).parent
    found = shutil.which("postgres")
    if found:
        return Path(found).resolve().parent
    raise InfraError("PostgreSQL server is missing (Debian: apt-get install postgresql); "
                     "or set KONTOR_PG_BINDIR to its bin directory")


@dataclass
class LocalPostgres:
    host: str = "127.0.0.1"
    port: int = 15432
    process: subprocess.Popen | None = None

    @property
    def admin_url(self) -> str:
        return f"postgresql://{SUPERUSER}@{self.host}:{self.port}/postgres"

    def url(self, database: str, driver: str = "postgresql+asyncpg") -> str:
        return f"{driver}://{SUPERUSER}@{self.host}:{self.port}/{database}"

    def _as_server_user(self, argv: list[str]) -> list[str]:
        if os.geteuid() != 0:
            return argv
        try:
            pwd.getpwnam("postgres")
        except KeyError as exc:
            raise InfraError("running as root but there is no `postgres` user: apt-get install postgresql") from exc
        return ["runuser", "-u", "postgres", "--", *argv]

    def _prepare_dirs(self) -> tuple[Path, Path, Path]:
        base = local_dir("postgres")
        data, run = base / "data", base / "run"
        run.mkdir(exist_ok=True)
        if os.geteuid() == 0:
            pw = pwd.getpwnam("postgres")
            for path in (base, run):
                os.chown(path, pw.pw_uid, pw.pw_gid)
        return base, data, run

    def start(self, timeout_s: float = 60) -> float | None:
        """Start the server unless one listens already; returns the start-up seconds (initdb included),
        or None when reused."""
        started = time.monotonic()
        if port_open(self.host, self.port):
            return None
        bindir = _bindir()
        base, data, run = self._prepare_dirs()
        log = base / "postgres.log"
        if not (data / "PG_VERSION").exists():
            subprocess.run(self._as_server_user([str(bindir / "initdb"), "-D", str(data), "-U", SUPERUSER,  # noqa: S603 - argv of our own, PostgreSQL binaries
                                                 "--auth=trust", "--encoding=UTF8", "--locale=C.UTF-8"]),
                           check=True, capture_output=True)
        if not log.exists():
            log.touch()
        if os.geteuid() == 0:
            pw = pwd.getpwnam("postgres")
            os.chown(log, pw.pw_uid, pw.pw_gid)
        argv = self._as_server_user([
            str(bindir / "postgres"), "-D", str(data), "-p", str(self.port), "-h", self.host,
            "-k", str(run), "-c", "max_connections=400", "-c", "shared_buffers=256MB",
            "-c", "max_locks_per_transaction=256",
        ])
        self.process = subprocess.Popen(argv, stdout=log.open("ab"), stderr=subprocess.STDOUT,  # noqa: S603 - argv of our own, PostgreSQL binaries
                                        start_new_session=True)
        wait_for_port(self.host, self.port, timeout_s, "PostgreSQL", self.process, log)
        asyncio.run(self._wait_accepting(timeout_s))
        return time.monotonic() - started

    async def _wait_accepting(self, timeout_s: float) -> None:
        deadline = asyncio.get_running_loop().time() + timeout_s
        while True:
            try:
                conn = await asyncpg.connect(self.admin_url, timeout=2)
                await conn.close()
                return
            except (OSError, asyncpg.CannotConnectNowError, asyncpg.PostgresError):
                if asyncio.get_running_loop().time() > deadline:
                    raise
                await asyncio.sleep(0.2)

    def fast_shutdown(self, timeout_s: float = 30) -> None:
        """`pg_ctl stop -m fast` whoever started it: sessions get "terminating connection due to
        administrator command", new connections "the database system is shutting down"."""
        _, data, _ = self._prepare_dirs()
        subprocess.run(self._as_server_user([str(_bindir() / "pg_ctl"), "stop", "-D", str(data), "-m", "fast",  # noqa: S603 - argv of our own, PostgreSQL binaries
                                             "-w", "-t", str(int(timeout_s))]), capture_output=True, check=True)
        if self.process:
            self.process.wait(timeout_s)
        self.process = None

    def crash(self) -> None:
        """SIGKILL the postmaster and every backend: the next start runs crash recovery, during
        which connections get "the database system is starting up"."""
        _, data, _ = self._prepare_dirs()
        pid = int((data / "postmaster.pid").read_text().split()[0])
        victims = [pid, *_children(pid)]
        for victim in victims:
            with contextlib.suppress(ProcessLookupError):  # gone already
                os.kill(victim, signal.SIGKILL)
        if self.process:
            self.process.wait(30)  # runuser reaps the postmaster, we reap runuser
        deadline = time.monotonic() + 30
        while any(_alive(v) for v in victims) and time.monotonic() < deadline:
            time.sleep(0.05)
        self.process = None

    def stop(self, timeout_s: float = 30) -> None:
        if self.process and self.process.poll() is None:
            _, data, _ = self._prepare_dirs()
            subprocess.run(self._as_server_user([str(_bindir() / "pg_ctl"), "stop", "-D", str(data), "-m", "fast",  # noqa: S603 - argv of our own, PostgreSQL binaries
                                                 "-w", "-t", str(int(timeout_s))]), capture_output=True)
            try:
                self.process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None


def _children(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                parent = int(proc_stat(entry)[1])
            except OSError:
                continue
            if parent == pid:
                found.append(int(entry))
    return found


def _alive(pid: int) -> bool:
    """Running (a zombie has let go of everything and counts as gone)."""
    try:
        return proc_stat(pid)[0] != "Z"
    except OSError:
        return False


async def ensure_database(admin_url: str, name: str) -> bool:
    """Create a database unless it exists; True when it was created."""
    conn = await asyncpg.connect(admin_url)
    try:
        if await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name):
            return False
        await conn.execute(f'CREATE DATABASE "{name}"')
        return True
    finally:
        await conn.close()


async def drop_database(admin_url: str, name: str) -> None:
    conn = await asyncpg.connect(admin_url)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()
