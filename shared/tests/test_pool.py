"""The engine's pool and sessions against a real PostgreSQL: a connection the server closed while
it sat idle in the pool is replaced before it is lent out, a busy pool pings nothing, and a session
for reads runs its statements without a transaction around them and refuses to write."""
from __future__ import annotations

import pytest
import sqlalchemy as sa

from kontor.db import WriteInReadSession, create_engine, create_read_session_factory, create_session_factory
from kontor.devinfra.postgres import drop_database, ensure_database
from kontor.testing import unique

pytestmark = pytest.mark.asyncio


@pytest.fixture
async def database(infra):
    name = unique("pool")
    await ensure_database(infra.postgres_admin_url, name)
    yield infra.database_url(name)
    await drop_database(infra.postgres_admin_url, name)


async def _backend_pid(engine) -> int:
    async with engine.connect() as conn:
        return (await conn.execute(sa.text("SELECT pg_backend_pid()"))).scalar_one()


async def _terminate(database: str, pid: int) -> None:
    """Close the server side of one pooled connection, as a restart or an idle timeout would."""
    other = create_engine(database, pool_size=1)
    try:
        async with other.connect() as conn:
            assert (await conn.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})).scalar_one()
    finally:
        await other.dispose()


def _count_pings(engine) -> list[int]:
    """Counts the pings the pool sends (the dialect's own ping, wrapped)."""
    dialect, pings = engine.sync_engine.dialect, [0]
    real = dialect.do_ping

    def counted(dbapi_connection):
        pings[0] += 1
        return real(dbapi_connection)

    dialect.do_ping = counted
    return pings


async def test_a_connection_closed_while_idle_is_replaced_before_it_is_lent_out(database):
    engine = create_engine(database, pool_size=1, ping_if_idle_s=0.0)  # every checkout counts as idle
    try:
        pid = await _backend_pid(engine)
        await _terminate(database, pid)
        # the pooled connection is dead; the ping finds it out and a new one does the work
        assert await _backend_pid(engine) != pid
    finally:
        await engine.dispose()


async def test_without_the_ping_the_dead_connection_fails_the_work(database):
    # the counterpart of the test above: what the ping prevents
    engine = create_engine(database, pool_size=1, ping_if_idle_s=3600.0)
    try:
        pid = await _backend_pid(engine)
        await _terminate(database, pid)
        with pytest.raises(sa.exc.DBAPIError) as failed:
            await _backend_pid(engine)
        assert failed.value.connection_invalidated
        assert await _backend_pid(engine) != pid  # the pool replaced it once it failed
    finally:
        await engine.dispose()


async def test_a_connection_back_in_the_pool_a_moment_ago_is_lent_out_without_a_ping(database):
    busy = create_engine(database, pool_size=1, ping_if_idle_s=3600.0)
    idle = create_engine(database, pool_size=1, ping_if_idle_s=0.0)
    try:
        counts = {}
        for name, engine in (("busy", busy), ("idle", idle)):
            first = await _backend_pid(engine)  # the pool makes its connection (new: no ping)
            pings = _count_pings(engine)
            assert {await _backend_pid(engine) for _ in range(5)} == {first}  # the same connection each time
            counts[name] = pings[0]
        assert counts == {"busy": 0, "idle": 5}
    finally:
        await busy.dispose()
        await idle.dispose()


# The id of the transaction a statement runs in: the same for statements of one transaction, a new
# one for a statement run on its own.
TRANSACTION_ID = sa.text("SELECT pg_current_xact_id()::text")


async def test_a_session_for_reads_runs_each_statement_on_its_own_and_a_session_for_writes_in_one(database):
    engine = create_engine(database, pool_size=1)
    try:
        async with create_read_session_factory(engine)() as session:
            assert len({(await session.execute(TRANSACTION_ID)).scalar_one() for _ in range(3)}) == 3
        async with create_session_factory(engine)() as session:  # the same pool, the same connection
            assert len({(await session.execute(TRANSACTION_ID)).scalar_one() for _ in range(3)}) == 1
        async with create_read_session_factory(engine)() as session:  # handed back without a transaction
            assert len({(await session.execute(TRANSACTION_ID)).scalar_one() for _ in range(3)}) == 3
    finally:
        await engine.dispose()


async def test_a_session_for_reads_refuses_to_write_or_lock_and_sends_nothing(database):
    engine = create_engine(database, pool_size=1)
    rows = sa.table("kept", sa.column("n", sa.Integer))
    try:
        async with engine.begin() as conn:
            await conn.execute(sa.text("CREATE TABLE kept (n integer)"))
            await conn.execute(rows.insert().values(n=1))
        async with create_read_session_factory(engine)() as session:
            for statement in (rows.insert().values(n=2), rows.update().values(n=3), rows.delete(),
                              sa.select(rows.c.n).with_for_update()):
                with pytest.raises(WriteInReadSession):
                    await session.execute(statement)
            assert (await session.execute(sa.select(rows.c.n))).scalars().all() == [1]
        async with create_session_factory(engine).begin() as session:  # sessions for writes still write
            await session.execute(rows.update().values(n=4))
        async with create_read_session_factory(engine)() as session:
            assert (await session.execute(sa.select(rows.c.n))).scalars().all() == [4]
    finally:
        await engine.dispose()
