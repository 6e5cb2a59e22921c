"""Issue 22, item 2, across orders and invoicing over real Kafka, PostgreSQL and HTTP: pausing a recurring order
drops invoicing's open plans of the paused months, resuming plans them again, a renewal plans the next term;
the billing runs draft exactly the invoices the order plans."""
from __future__ import annotations

import datetime as dt
import uuid

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine

from kontor.clock import FixedClock
from kontor.contracts.clients import ClientRegisteredV1, ClientSnapshotV1, ClientStandingV1
from kontor.contracts.common import Actor, Address
from kontor.testing import eventually
from kontor.testing.kafka import publish_event
from kontor.testing.services import auth, ok, running_service
from kontor_invoicing.spec import SPEC as INVOICING
from kontor_orders.spec import SPEC as ORDERS

pytestmark = pytest.mark.integration
MEMBER = auth("member-1", "member")
ADVISOR = auth("advisor-1", "advisor")
NOW = dt.datetime(2026, 11, 22, 10, 0, tzinfo=dt.UTC)


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
        client_id = uuid.uuid4()
        await publish_event(infra.kafka_bootstrap, topic_prefix, ClientRegisteredV1(
            client_id=client_id, occurred_at=NOW, actor=Actor(kind="member", id="member-1"),
            client=ClientSnapshotV1(
                client_id=client_id, kind="company", name="ACME GmbH", vat_id="DE136695976",
                address=Address(street="Hauptstraße 1", postal_code="10115", city="Berlin", country="DE"),
                invoice_email="rechnung@acme.example", language="de", standing=ClientStandingV1(status="ok"),
                version=1)), time=NOW)
        body = {
            "client_id": str(client_id), "contact_person": {"name": "Erika Muster", "email": "erika@acme.example"},
            "sector": "design", "place_of_service": "DE", "project_name": "Wartung", "description": "Website care",
            "currency": "EUR",
            "lines": [{"description": "Wartung", "quantity": "1", "unit": "month", "unit_price": "450.00"}],
            "service_period": {"start": "2027-01-01", "end": "2027-03-31"},
            "confirmation": {"mode": "skip", "skip_reason": "framework contract signed"},
            "payment": {"mode": "recurring", "interval": "month", "first_invoice_date": "2027-01-01"}}

        async def accepted():
            r = await orders.http.post("/orders", json=body, headers=MEMBER)
            return r.json() if r.status_code == 201 else None
        oid = (await eventually(accepted, what="orders knowing the client"))["order_id"]
        await ok(orders.http.post(f"/orders/{oid}/submit", headers=MEMBER))
        await ok(orders.http.post(f"/orders/{oid}/approve", headers=ADVISOR))

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
