"""Local infrastructure without Docker: the real Kafka broker (KRaft) run from Maven jars,
PostgreSQL from Debian's package, and an SMTP server that keeps every message.

Used by `make up` (the dev stack) and by the tests when no broker or database is
configured and no Docker engine answers. Every start is idempotent: a running
server on the port is reused, data under `.local/` survives restarts.
"""
from __future__ import annotations

import os
import secrets
import socket
import time
from pathlib import Path


class InfraError(RuntimeError):
    """A local server cannot be set up; the message says what to install or free."""


def proc_stat(pid: int | str) -> list[str]:
    """The fields of `/proc/<pid>/stat` after the command name (state first, as `man 5 proc`
    numbers them from 3); OSError when the process is gone."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    return stat[stat.rindex(")") + 2:].split()


def cpu_seconds(pid: int | str) -> float:
    """CPU seconds the process has used so far (user + system); OSError when it is gone."""
    fields = proc_stat(pid)
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def project_root() -> Path:
    env = os.environ.get("KONTOR_ROOT")
    if env:
        return Path(env).resolve()
    for start in (Path.cwd(), Path(__file__).resolve()):
        for candidate in (start, *start.parents):
            if (candidate / "deploy" / "kafka" / "pom.xml").is_file():
                return candidate
    raise InfraError("cannot find the Kontor checkout (no deploy/kafka/pom.xml above here); set KONTOR_ROOT")


def local_dir(*parts: str) -> Path:
    path = project_root().joinpath(".local", *parts)
    path.mkdir(parents=True, exist_ok=True)
    return path


def port_open(host: str, port: int, timeout: float = 0.3) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def _ephemeral_range() -> tuple[int, int]:
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 32768, 60999  # Linux's default


def _bindable(host: str, port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def free_port(count: int = 1, host: str = "127.0.0.1") -> int:
    """The first of `count` consecutive ports that nothing holds, chosen outside the kernel's ephemeral range.

    A port from that range (what binding port 0 gives) can be taken as the source port of any outgoing
    connection between this call and the moment the intended program binds it; a Kafka cluster, whose
    nodes connect to each other while they start, failed so in CI ("Address already in use")."""
    low, high = _ephemeral_range()
    spans = [(start, end - count) for start, end in ((20000, low), (high + 1, 65536)) if end - count > start]
    for _ in range(200 if spans else 0):
        start, end = secrets.choice(spans)
        base = start + secrets.randbelow(end - start)
        if all(_bindable(host, base + i) for i in range(count)):
            return base
    raise InfraError(f"no {count} consecutive free ports outside the ephemeral range {low}-{high}")


def wait_for_port(host: str, port: int, timeout_s: float, what: str, proc=None, log: Path | None = None) -> float:
    """Wait until something listens; returns the seconds waited. Fails early if `proc` died."""
    start = time.monotonic()
    while time.monotonic() - start < timeout_s:
        if port_open(host, port):
            return time.monotonic() - start
        if proc is not None and proc.poll() is not None:
            tail = log.read_text()[-3000:] if log and log.exists() else ""
            raise InfraError(f"{what} exited with code {proc.returncode} before listening on {host}:{port}\n{tail}")
        time.sleep(0.1)
    raise InfraError(f"{what} did not listen on {host}:{port} within {timeout_s:.0f}s (log: {log})")
