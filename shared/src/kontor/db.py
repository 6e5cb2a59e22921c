"""Database helpers: engines and sessions built by factories, Alembic run from code.

Each service keeps its migrations inside its package (`<pkg>/migrations`); `upgrade`
runs them on an existing connection so that it works from a CLI, an app start-up
and an async test alike.
"""
from __future__ import annotations

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


def create_engine(database_url: str, *, pool_size: int = 10) -> AsyncEngine:
    return create_async_engine(database_url, pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True)


def create_session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


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
