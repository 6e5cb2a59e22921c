"""Classifying failures by cause: what waits out an outage, what is the work's own failure."""

import asyncpg
import pytest
import sqlalchemy.exc as sa_exc
from aiokafka.errors import KafkaConnectionError, NotLeaderForPartitionError, RecordTooLargeError

from kontor import faults

pytestmark = pytest.mark.unit


def wrapped(pg_error: Exception) -> Exception:
    """As SQLAlchemy's asyncpg dialect raises it: a DBAPIError whose cause is asyncpg's error."""
    try:
        try:
            raise pg_error
        except Exception as e:
            raise sa_exc.DBAPIError("SELECT 1", {}, e) from e
    except sa_exc.DBAPIError as outer:
        return outer


@pytest.mark.parametrize("error", [
    asyncpg.CannotConnectNowError("the database system is starting up"),  # 57P03
    asyncpg.AdminShutdownError("terminating connection due to administrator command"),  # 57P01
    asyncpg.CrashShutdownError("crash shutdown"),  # 57P02
    asyncpg.SerializationError("could not serialize access"),  # 40001
    asyncpg.DeadlockDetectedError("deadlock detected"),  # 40P01
    asyncpg.TooManyConnectionsError("too many connections"),  # 53300
    asyncpg.ConnectionDoesNotExistError("connection does not exist"),  # 08003
], ids=lambda e: type(e).__name__)
def test_database_outages_are_infrastructure_faults(error):
    assert faults.is_infrastructure_fault(error)
    assert faults.is_infrastructure_fault(wrapped(error)), "classified by the cause inside SQLAlchemy's error"


@pytest.mark.parametrize("error", [
    asyncpg.UniqueViolationError("duplicate key"),  # 23505
    asyncpg.RaiseError("ledger closed"),  # P0001: a trigger refused
    asyncpg.UndefinedColumnError("no such column"),  # 42703: a bug
    ValueError("bad amount"), KeyError("lines"), FileNotFoundError("x.pdf"), RecordTooLargeError(),
], ids=lambda e: type(e).__name__)
def test_failures_of_the_work_itself_are_not(error):
    assert not faults.is_infrastructure_fault(error)
    if isinstance(error, asyncpg.PostgresError):
        assert not faults.is_infrastructure_fault(wrapped(error))


@pytest.mark.parametrize("error", [
    ConnectionRefusedError(111, "refused"), ConnectionResetError("reset"), TimeoutError(), TimeoutError(),
    OSError(113, "No route to host"), KafkaConnectionError("Unable to bootstrap"), NotLeaderForPartitionError(),
], ids=lambda e: type(e).__name__)
def test_network_and_broker_errors_are_infrastructure_faults(error):
    assert faults.is_infrastructure_fault(error)


def test_a_fault_anywhere_in_the_chain_counts():
    try:
        try:
            raise ConnectionResetError("lost")
        except ConnectionResetError as e:
            raise RuntimeError("could not store the invoice") from e
    except RuntimeError as outer:
        assert faults.is_infrastructure_fault(outer)
    assert faults.sqlstate(wrapped(asyncpg.CannotConnectNowError("x"))) == "57P03"


def test_backoff_grows_to_its_limit_with_jitter():
    backoff = faults.Backoff(0.5, 4.0)
    delays = [backoff.next_delay() for _ in range(8)]
    assert all(0.25 <= d <= 4.0 for d in delays)
    assert max(delays[5:]) > 2.0 and delays[0] <= 0.5
    backoff.reset()
    assert backoff.next_delay() <= 0.5


def test_user_data_in_a_statement_or_a_handled_timeout_does_not_make_a_bug_an_outage():
    statement_error = sa_exc.StatementError("bad value", "INSERT ... ('connection reset by the client')", {},
                                            TypeError("not a number"))
    assert not faults.is_infrastructure_fault(statement_error), "the parameters are user data"
    try:
        try:
            raise TimeoutError()
        except TimeoutError:  # the bug is chained implicitly (__context__), as a bug in a handler is
            raise ValueError("a bug while handling a timeout")  # noqa: B904
    except ValueError as bug:
        assert not faults.is_infrastructure_fault(bug)
    out_of_range = asyncpg.exceptions.DataError("invalid input for query argument $1: 10**20 "
                                                "(value out of int64 range)")
    assert not faults.is_infrastructure_fault(wrapped(out_of_range))
    assert faults.is_infrastructure_fault(asyncpg.exceptions.InterfaceError("cannot call Connection.execute(): "
                                                                            "connection is closed"))
