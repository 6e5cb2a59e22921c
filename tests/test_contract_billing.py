"""Issue 22, item 2, across orders and invoicing over real Kafka, PostgreSQL and HTTP: pausing a recurring order
drops invoicing's open plans of the paused months, resuming plans them again, a renewal plans the next term;
the billing runs draft exactly the invoices the order plans."""
from __future__ import annotations

import datetime as dt
import uuid

import pytest
import sqlalchemy as sa
from orders_support import ADVISOR, MEMBER, MONTHLY, NOW, active, known_client
from sqlalchemy.ext.asyncio import create_async_engine

from kontor.clock import FixedClock
from kontor.testing import eventually
from kontor.testing.services import ok, running_service
from kontor_invoicing.spec import SPEC as INVOICING
from kontor_orders.spec import SPEC as ORDERS

pytestmark = pytest.mark.integration


async def open_plans(database: str, order_id: str) -> list[str]:
    """The invoice dates invoicing still plans for the order (its own table: planned invoices have no API)."""
    engine = create_async_engine(database)
    try:
        async with engine.connect() as conn:
            rows = (await conn.execute(sa.text(
                "SELECT invoice_date FROM planned_invoices WHERE order_id = :id AND status = 'planned' "
                "ORDER BY invoice_date"), {"id": uuid.UUID(order_id)})).all()
    finally:
        await engine.dispose()
    return [row.invoice_date.isoformat() for row in rows]


async def test_pause_resume_and_renewal_reach_invoicing(infra, topic_prefix):
    clock = FixedClock(NOW)
    common = {"topic_prefix": topic_prefix}
    async with running_service(ORDERS, infra, **common, order_runs_enabled=False, clock=clock) as orders, \
            running_service(INVOICING, infra, **common, billing_runs_enabled=False, allow_future_as_of=True,
                            clock=clock) as invoicing:
        client_id = await known_client(infra, topic_prefix, name="ACME GmbH")
        oid = (await active(orders, client_id, **MONTHLY, project_name="Wartung",
                            description="Website care"))["order_id"]

        async def plans(expected: list[str]):
            found = await open_plans(invoicing.database, oid)
            return found if found == expected else None
        await eventually(lambda: plans(["2027-01-01", "2027-02-01", "2027-03-01"]), what="the three months planned")

        contract = f"/orders/{oid}/contract"
        await ok(orders.http.post(contract, headers=MEMBER, json={"action": "pause", "from": "2027-02-01"}))
        await eventually(lambda: plans(["2027-01-01"]), what="February and March dropped by the pause")
        await ok(orders.http.post(contract, headers=MEMBER, json={"action": "resume", "from": "2027-03-01"}))
        await eventually(lambda: plans(["2027-01-01", "2027-03-01"]), what="March planned again")
        await ok(orders.http.post(contract, headers=MEMBER,
                                  json={"action": "auto_renew", "term_months": 2, "notice_months": 0}))
        clock.advance(dt.datetime(2027, 4, 1, 10, tzinfo=dt.UTC) - clock.now())
        await ok(orders.http.post("/order-runs", json={"as_of": "2027-04-01"}, headers=ADVISOR))
        await eventually(lambda: plans(["2027-01-01", "2027-03-01", "2027-04-01", "2027-05-01"]),
                         what="the renewed term (April, May) planned")

        async def drafted():
            r = await ok(invoicing.http.post("/billing-runs", json={"as_of": "2027-05-31"}, headers=ADVISOR), 200, 202)
            assert r.get("status") != "failed", r
            found = await ok(invoicing.http.get("/invoices", params={"order_id": oid}, headers=ADVISOR))
            return sorted(i["invoice_date"] for i in found) if len(found) >= 4 else None
        dates = await eventually(drafted, timeout_s=120, interval_s=0.5, what="the four invoices drafted")
        assert dates == ["2027-01-01", "2027-03-01", "2027-04-01", "2027-05-01"]
