"""Migrations that change rows already there, run against a real PostgreSQL from the revision before."""
import datetime as dt
import uuid

import sqlalchemy as sa

from kontor.db import create_engine, upgrade
from kontor.testing.services import fresh_database
from kontor_invoicing.spec import SPEC

T = dt.datetime(2027, 1, 15, 9, tzinfo=dt.UTC)


async def test_billing_runs_get_their_order_of_creation_and_new_runs_come_after(infra):
    async with fresh_database(infra, SPEC, revision="0006") as url:
        # created: b (09:00), then a and c at the same instant (10:00; the ids decide between them)
        a, b, c = sorted(uuid.uuid4() for _ in range(3))
        made = [(b, T), (c, T + dt.timedelta(hours=1)), (a, T + dt.timedelta(hours=1))]
        engine = create_engine(url)
        try:
            async with engine.begin() as conn:
                for run_id, at in made:
                    await conn.execute(sa.text(
                        "INSERT INTO billing_runs (id, as_of, status, phase, requested_by, created_at) "
                        "VALUES (:id, :as_of, 'finished', 'done', 'cli', :at)"),
                        {"id": run_id, "as_of": at.date(), "at": at})
            await upgrade(url, SPEC.migrations)
            async with engine.begin() as conn:
                new = uuid.uuid4()
                await conn.execute(sa.text(
                    "INSERT INTO billing_runs (id, as_of, status, phase, requested_by, created_at) "
                    "VALUES (:id, '2027-01-15', 'queued', 'drafting', 'api', :at)"), {"id": new, "at": T})
                rows = (await conn.execute(sa.text("SELECT id, seq FROM billing_runs ORDER BY seq"))).all()
                identity = (await conn.execute(sa.text(
                    "SELECT is_identity, identity_generation FROM information_schema.columns "
                    "WHERE table_name = 'billing_runs' AND column_name = 'seq'"))).one()
        finally:
            await engine.dispose()
    assert [r.id for r in rows] == [b, a, c, new], "by created_at, then id; a run created later comes last"
    assert [r.seq for r in rows] == [1, 2, 3, 4]
    assert tuple(identity) == ("YES", "ALWAYS")
