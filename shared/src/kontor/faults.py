"""Telling an infrastructure fault from a failure of the work itself, by cause; and waiting
before the next try (`Backoff`, `pause`).

An infrastructure fault (the database starting up after a crash, shutting down, restarting; a
connection refused or reset; a serialization failure or deadlock; a broker that is not there
or not the leader; a timeout) says nothing about the record or the job being worked on: it is
retried without limit, with backoff, and never dead-letters a good event. Anything else is the
work's own failure: retried a bounded number of times, then set aside (dead letter, failed run).

The decision walks the whole exception chain (`__cause__`, `__context__`, SQLAlchemy's
`orig`), so an asyncpg error wrapped by SQLAlchemy, or a socket error wrapped by a client
library, is classified by what actually happened.
"""
from __future__ import annotations

import asyncio
import random
import socket
from collections.abc import Iterator

# PostgreSQL SQLSTATEs (Appendix A of its manual)
TRANSIENT_SQLSTATE_CLASSES = ("08", "53")  # connection exception; insufficient resources
TRANSIENT_SQLSTATES = frozenset({
    "57P01",  # admin_shutdown: terminating connection due to administrator command
    "57P02",  # crash_shutdown
    "57P03",  # cannot_connect_now: the database system is starting up / shutting down / in recovery
    "40001",  # serialization_failure
    "40P01",  # deadlock_detected
    "55P03",  # lock_not_available (lock_timeout)
    "57014",  # query_canceled (statement_timeout)
})
# messages of asyncpg's own errors when it lost its connection without a SQLSTATE (matched on the
# driver's error only: SQLAlchemy's message also holds the statement's parameters, i.e. user data)
TRANSIENT_MESSAGES = ("connection is closed", "connection was closed", "the connection is lost",
                      "terminating connection", "the database system is", "server closed the connection",
                      "connection refused", "connection reset", "cannot switch to state")


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """The exception and what caused it (`raise ... from`, SQLAlchemy's `orig`), not what was merely
    being handled when it was raised (`__context__`): a bug raised in an `except TimeoutError`
    block is still a bug."""
    seen: set[int] = set()
    todo = [exc]
    while todo:
        e = todo.pop()
        if e is None or id(e) in seen:
            continue
        seen.add(id(e))
        yield e
        todo.extend(x for x in (e.__cause__, getattr(e, "orig", None)) if isinstance(x, BaseException))


def sqlstate(exc: BaseException) -> str | None:
    """The PostgreSQL SQLSTATE anywhere in the chain, if any."""
    for e in _chain(exc):
        code = getattr(e, "sqlstate", None) or getattr(e, "pgcode", None)
        if isinstance(code, str) and len(code) == 5:
            return code
    return None


def is_infrastructure_fault(exc: BaseException) -> bool:
    """True when `exc` was caused by the database, the broker or the network, not by the work."""
    code = sqlstate(exc)
    if code is not None:
        return code[:2] in TRANSIENT_SQLSTATE_CLASSES or code in TRANSIENT_SQLSTATES
    for e in _chain(exc):
        if isinstance(e, (ConnectionError, TimeoutError, asyncio.TimeoutError, socket.gaierror)):
            return True
        if isinstance(e, OSError) and e.errno is not None and e.errno in _NETWORK_ERRNOS:
            return True
        module = type(e).__module__ or ""
        if module.startswith("aiokafka") and (getattr(e, "retriable", False) or type(e).__name__ in _KAFKA_FAULTS):
            return True
        if module.startswith("asyncpg") and any(m in str(e).lower() for m in TRANSIENT_MESSAGES):
            return True
        if (module.startswith("asyncpg") and type(e).__name__ == "ConnectionDoesNotExistError") or \
                (module.startswith("sqlalchemy") and type(e).__name__ == "DisconnectionError"):
            return True
    return False


def _errnos() -> frozenset[int]:
    import errno

    names = ("ECONNREFUSED", "ECONNRESET", "ECONNABORTED", "EPIPE", "ETIMEDOUT", "EHOSTUNREACH", "ENETUNREACH",
             "ENETDOWN", "EHOSTDOWN", "EADDRNOTAVAIL")
    return frozenset(getattr(errno, n) for n in names if hasattr(errno, n))


_NETWORK_ERRNOS = _errnos()
# aiokafka errors that are faults of the cluster although not marked retriable
_KAFKA_FAULTS = frozenset({"KafkaConnectionError", "KafkaTimeoutError", "NodeNotReadyError", "RequestTimedOutError",
                           "NotLeaderForPartitionError", "LeaderNotAvailableError", "NotEnoughReplicasError",
                           "NotEnoughReplicasAfterAppendError", "BrokerNotAvailableError", "KafkaUnavailableError",
                           "CoordinatorNotAvailableError", "NotCoordinatorError", "GroupCoordinatorNotAvailableError",
                           "UnknownTopicOrPartitionError", "ProducerClosed"})


class Backoff:
    """Exponential backoff with jitter: `base_s`, doubling up to `max_s`."""

    def __init__(self, base_s: float = 0.2, max_s: float = 30.0) -> None:
        self.base_s = base_s
        self.max_s = max_s
        self.attempts = 0

    def next_delay(self) -> float:
        delay = min(self.max_s, self.base_s * (2 ** self.attempts))
        self.attempts += 1
        return delay * (0.5 + random.random() / 2)  # noqa: S311 - jitter of a retry, not a secret

    def reset(self) -> None:
        self.attempts = 0


async def pause(stop: asyncio.Event, seconds: float) -> bool:
    """Wait `seconds`, or less if `stop` is set meanwhile; True when it was (the caller ends)."""
    try:
        await asyncio.wait_for(stop.wait(), timeout=seconds)
        return True
    except TimeoutError:
        return False
