"""Database helpers: engines and sessions built by factories, Alembic run from code.

Each service keeps its migrations inside its package (`<pkg>/migrations`); `upgrade`
runs them on an existing connection so that it works from a CLI, an app start-up
and an async test alike.
"""
from __future__ import annotations

import time
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from kontor.logging import get_logger

log = get_logger(__name__)

# One naming convention for every service, so migrations name constraints predictably.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def new_metadata() -> sa.MetaData:
    return sa.MetaData(naming_convention=NAMING_CONVENTION)


# A pooled connection idle for longer than this is pinged before it is lent out again.
PING_IF_IDLE_S = 1.0


def create_engine(database_url: str, *, pool_size: int = 10, ping_if_idle_s: float = PING_IF_IDLE_S) -> AsyncEngine:
    """An engine whose pool checks a connection before lending it out, but only one that was idle
    for `ping_if_idle_s`: a connection that PostgreSQL closed meanwhile (a restart, a crash, an
    idle timeout) is replaced instead of failing the work it was lent for.

    SQLAlchemy's `pool_pre_ping` pings at every checkout, which for asyncpg is three round trips
    (BEGIN, a query, ROLLBACK): under load more than a third of a service's statements. A connection
    back in the pool a moment ago needs no ping: should the server have gone away within that
    moment, the statement fails as an infrastructure fault (retried by the callers, `kontor.faults`),
    and SQLAlchemy, seeing a disconnect, replaces every connection of the pool made before it."""
    engine = create_async_engine(database_url, pool_size=pool_size, max_overflow=pool_size)
    dialect = engine.sync_engine.dialect

    @sa.event.listens_for(engine.sync_engine, "checkin")
    def _checked_in(dbapi_connection, record) -> None:
        record.info["kontor_idle_since"] = time.monotonic()

    @sa.event.listens_for(engine.sync_engine, "checkout")
    def _checked_out(dbapi_connection, record, proxy) -> None:
        since = record.info.get("kontor_idle_since")
        if since is None or time.monotonic() - since < ping_if_idle_s:
            return  # new, or back in the pool only a moment ago
        try:
            dialect.do_ping(dbapi_connection)
        except Exception as e:  # the pool invalidates this one and lends out another (a new one if need be)
            log.info("stale database connection replaced", error=f"{type(e).__name__}: {e}"[:300],
                     idle_s=round(time.monotonic() - since, 1))
            raise sa.exc.DisconnectionError(str(e)) from e

    return engine


def create_session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


class WriteInReadSession(RuntimeError):
    """A statement that writes, run in a session for reads (`create_read_session_factory`)."""


def create_read_session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions for requests that only read: every statement runs on its own (autocommit), with no
    BEGIN before and no ROLLBACK after it, two round trips fewer for a read of one statement
    (a document fetched for an e-mail, a run's progress polled). Under READ COMMITTED, PostgreSQL's
    default and ours, each statement of a transaction takes its own snapshot as well, so a read of
    several statements sees nothing different. The connections are the engine's own pool.

    A statement that writes (INSERT, UPDATE, DELETE) or locks rows (FOR UPDATE) raises
    `WriteInReadSession` before it is sent: here it would commit at once, alone."""
    reads = engine.execution_options(isolation_level="AUTOCOMMIT")  # its events are its own

    @sa.event.listens_for(reads.sync_engine, "before_execute")
    def _refuse_writes(conn, clauseelement, multiparams, params, execution_options) -> None:
        if isinstance(clauseelement, sa.sql.dml.UpdateBase) or (
                isinstance(clauseelement, sa.sql.Select) and clauseelement._for_update_arg is not None):
            raise WriteInReadSession(f"not in a session for reads: {str(clauseelement)[:200]}")

    return async_sessionmaker(reads, expire_on_commit=False)


def alembic_config(script_location: Path, database_url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(script_location))
    cfg.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return cfg


async def upgrade(database_url: str, script_location: Path, revision: str = "head") -> None:
    """Run a service's migrations up to `revision` (idempotent)."""
    engine = create_async_engine(database_url)
    try:
        async with engine.begin() as conn:
            # API and worker replicas start together; one of them migrates, the others wait.
            await conn.execute(sa.text("SELECT pg_advisory_xact_lock(hashtext('kontor-migrations'))"))

            def _run(sync_conn):
                cfg = alembic_config(script_location, database_url)
                cfg.attributes["connection"] = sync_conn
                command.upgrade(cfg, revision)

            await conn.run_sync(_run)
        log.info("migrations applied", database=make_url(database_url).database, revision=revision)
    finally:
        await engine.dispose()


def run_migrations_in_env(target_metadata: sa.MetaData) -> None:
    """Body of every service's `migrations/env.py` (online mode on a given connection)."""
    from alembic import context

    connection = context.config.attributes.get("connection")
    if connection is None:
        raise RuntimeError("run migrations through kontor.db.upgrade (`<service> migrate`)")
    context.configure(connection=connection, target_metadata=target_metadata, compare_type=True)
    with context.begin_transaction():
        context.run_migrations()


async def ping(engine: AsyncEngine) -> None:
    async with engine.connect() as conn:
        await conn.execute(sa.text("SELECT 1"))


async def upsert_newer(session: AsyncSession, table: sa.Table, values: dict) -> bool:
    """Store a versioned snapshot in a read model (key `id`, column `version`): inserted, or
    replacing an older one; a snapshot older than the stored one (a late or replayed event)
    changes nothing. True when it was applied."""
    from sqlalchemy.dialects.postgresql import insert

    stmt = insert(table).values(**values)
    changes = {k: stmt.excluded[k] for k in values if k != "id"}
    if "updated_at" in table.c:
        changes["updated_at"] = sa.func.now()
    upsert = stmt.on_conflict_do_update(index_elements=[table.c.id], set_=changes,
                                        where=table.c.version < stmt.excluded.version).returning(table.c.id)
    return (await session.execute(upsert)).first() is not None
