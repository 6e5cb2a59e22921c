"""Issue 22, items 1 and 5, across clients, orders and invoicing over real Kafka, PostgreSQL and HTTP:

- a payment plan by line items: the orders API refuses an inconsistent plan naming the entry; a
  consistent one issues an installment invoice per entry that lists the entry's lines, and a final
  invoice that lists every line and deducts them;
- a price change of a recurring order's line from a billing period on: the planned invoices of
  that period and later bill the new price (drafted so by invoicing), the earlier ones keep the
  old one; a change inside an invoiced period is refused with the reason; the order's history
  keeps the change."""
from __future__ import annotations

import datetime as dt
import uuid

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine

from kontor.clock import FixedClock
from kontor.testing import eventually
from kontor.testing.services import auth, ok, running_service
from kontor_clients.spec import SPEC as CLIENTS
from kontor_invoicing.spec import SPEC as INVOICING
from kontor_orders.spec import SPEC as ORDERS

pytestmark = pytest.mark.integration
MEMBER = auth("member-1", "member")
ADVISOR = auth("advisor-1", "advisor")


async def known_client_order(orders, body: dict) -> dict:
    async def accepted():
        r = await orders.http.post("/orders", json=body, headers=MEMBER)
        assert r.status_code == 201 or "unknown client" in r.text, r.text
        return r.json() if r.status_code == 201 else None
    return await eventually(accepted, what="orders knowing the order's client")


async def register_client(clients, run: str) -> dict:
    return await ok(clients.http.post("/clients", headers=MEMBER, json={
        "kind": "company", "name": f"ACME {run} GmbH", "invoice_email": f"rechnung.{run}@acme.example",
        "language": "de", "vat_id": "DE811569869",
        "address": {"street": "Hauptstraße 1", "postal_code": "10115", "city": "Berlin", "country": "DE"}}))


def order_body(client: dict, lines: list[dict], payment: dict, start: str, end: str) -> dict:
    return {"client_id": client["id"], "contact_person": {"name": "Erika Muster", "email": "erika@acme.example"},
            "sector": "design", "place_of_service": "DE", "project_name": "Relaunch 2027", "description": "Website",
            "currency": "EUR", "lines": lines, "service_period": {"start": start, "end": end},
            "confirmation": {"mode": "skip", "skip_reason": "Rahmenvertrag", "separate_agreement": True},
            "payment": payment}


async def activated(orders, order: dict) -> dict:
    oid = order["order_id"]
    await ok(orders.http.post(f"/orders/{oid}/submit", headers=MEMBER))
    approved = await ok(orders.http.post(f"/orders/{oid}/approve", headers=ADVISOR))
    assert approved["status"] == "active", approved
    return approved


async def run_until(invoicing, order_id: str, as_of: str, count: int, *, status: str | None = None) -> list[dict]:
    """Billing runs as of `as_of` until the order has `count` invoices (with `status`), by their dates."""
    async def enough():
        r = await ok(invoicing.http.post("/billing-runs", json={"as_of": as_of}, headers=ADVISOR), 200, 202)
        assert r.get("status") != "failed", r
        found = await ok(invoicing.http.get("/invoices", params={"order_id": order_id}, headers=ADVISOR))
        if status is not None:
            found = [i for i in found if i["status"] == status]
        return sorted(found, key=lambda i: (i["invoice_date"], i["number"] or "")) if len(found) >= count else None
    return await eventually(enough, timeout_s=120, interval_s=0.5, what=f"{count} invoice(s) as of {as_of}")


async def test_a_plan_by_line_items_issues_an_invoice_per_entry_and_a_final_invoice_that_deducts_them(
        infra, topic_prefix):
    run = uuid.uuid4().hex[:8]
    common = {"topic_prefix": topic_prefix}
    async with running_service(CLIENTS, infra, **common, standing_run_enabled=False) as clients, \
            running_service(ORDERS, infra, **common, order_runs_enabled=False) as orders, \
            running_service(INVOICING, infra, **common, billing_runs_enabled=False, allow_future_as_of=True,
                            clock=FixedClock(dt.datetime(2027, 1, 10, 9, tzinfo=dt.UTC))) as invoicing:
        client = await register_client(clients, run)
        lines = [{"description": "Konzept", "quantity": "1", "unit": "lump_sum", "unit_price": "1200.00"},
                 {"description": "Design", "quantity": "2", "unit": "day", "unit_price": "900.00"},
                 {"description": "Hosting", "quantity": "1", "unit": "lump_sum", "unit_price": "500.00",
                  "kind": "optional"},
                 {"description": "Umsetzung", "quantity": "1", "unit": "lump_sum", "unit_price": "2400.00"}]

        def plan(*entries: dict) -> dict:
            return {"mode": "installments", "due_in_days": 14, "installments": list(entries)}

        # inconsistent plans are refused, each error naming its entry
        for entries, field in (
                (({"date": "2027-01-15", "lines": [2]}, {"date": "2027-03-31", "lines": [0, 1, 3]}),
                 ["body", "payment", "installments", "0", "lines", "0"]),  # optional line
                (({"date": "2027-01-15", "lines": [0, 1]}, {"date": "2027-03-31", "lines": [1, 3]}),
                 ["body", "payment", "installments", "1", "lines", "0"]),  # billed twice
                (({"date": "2027-01-15", "lines": [9]}, {"date": "2027-03-31", "amount": "4200.00"}),
                 ["body", "payment", "installments", "0", "lines", "0"]),  # no such line
                (({"date": "2027-01-15", "lines": [0]}, {"date": "2027-03-31", "amount": "4300.00"}),
                 ["body", "payment", "installments"])):  # more than the total
            body = order_body(client, lines, plan(*entries), "2027-01-01", "2027-03-31")
            r = await eventually(lambda b=body: _unless_unknown_client(orders, b), what="orders knowing the client")
            assert r.status_code == 422, r.text
            assert field in [e["loc"] for e in r.json()["detail"]], r.text

        order = await known_client_order(orders, order_body(client, lines, plan(
            {"date": "2027-01-15", "lines": [0]}, {"date": "2027-02-15", "lines": [1]},
            {"date": "2027-03-31", "lines": [3]}), "2027-01-01", "2027-03-31"))
        assert [i["lines"] for i in order["payment"]["installments"]] == [[0], [1], [3]]
        active = await activated(orders, order)
        assert [(p["kind"], p["net_amount"], p["deducted"]) for p in active["schedule"]] == [
            ("installment", "1200.00", "0"), ("installment", "1800.00", "0"), ("final", "2400.00", "3000.00")]
        oid = order["order_id"]

        first = (await run_until(invoicing, oid, "2027-01-15", 1, status="invoiced"))[0]
        assert [(ln["description"], ln["net_amount"]) for ln in first["lines"]] == [("Konzept", "1200.00")]
        assert (first["schedule_kind"], first["net_total"], first["gross_total"]) == ("installment", "1200.00",
                                                                                     "1428.00")
        second = (await run_until(invoicing, oid, "2027-02-15", 2, status="invoiced"))[1]
        assert [(ln["description"], ln["quantity"], ln["net_amount"]) for ln in second["lines"]] == [
            ("Design", "2", "1800.00")]
        final = (await run_until(invoicing, oid, "2027-03-31", 3, status="invoiced"))[2]
        assert final["schedule_kind"] == "final"
        assert [ln["description"] for ln in final["lines"]] == ["Konzept", "Design", "Umsetzung"]
        # the whole order (5,400.00 net, 6,426.00 gross) less the two partial invoices (1,428.00 + 2,142.00 gross)
        assert (final["net_total"], final["gross_total"], final["prepaid_amount"], final["amount_due"]) == (
            "5400.00", "6426.00", "3570.00", "2856.00")
        assert [(d["number"], d["net_amount"]) for d in final["deductions"]] == [
            (first["number"], "1200.00"), (second["number"], "1800.00")]

        # the orders service learns of the three invoices: the order value is what was billed once
        async def invoiced():
            got = await ok(orders.http.get(f"/orders/{oid}", headers=MEMBER))
            return got if len(got["issued_invoices"]) == 3 else None
        got = await eventually(invoiced, timeout_s=60, what="orders knowing the three invoices")
        assert got["order_value"] == "5400.00"


async def _unless_unknown_client(orders, body: dict):
    r = await orders.http.post("/orders", json=body, headers=MEMBER)
    return None if "unknown client" in r.text else r


async def planned_net(database: str, order_id: str) -> dict[int, str]:
    """What invoicing has planned for the order, per seq (its own table: planned invoices have no API)."""
    engine = create_async_engine(database)
    try:
        async with engine.connect() as conn:
            rows = (await conn.execute(sa.text("SELECT seq, plan FROM planned_invoices WHERE order_id = :id"),
                                       {"id": uuid.UUID(order_id)})).all()
    finally:
        await engine.dispose()
    return {seq: plan["net_amount"] for seq, plan in rows}


async def test_a_price_change_applies_to_the_planned_invoices_from_its_period_on_and_never_retroactively(
        infra, topic_prefix):
    run = uuid.uuid4().hex[:8]
    common = {"topic_prefix": topic_prefix}
    today = FixedClock(dt.datetime(2027, 2, 10, 9, tzinfo=dt.UTC))
    async with running_service(CLIENTS, infra, **common, standing_run_enabled=False) as clients, \
            running_service(ORDERS, infra, **common, order_runs_enabled=False, clock=today) as orders, \
            running_service(INVOICING, infra, **common, billing_runs_enabled=False, allow_future_as_of=True,
                            clock=today) as invoicing:
        client = await register_client(clients, run)
        lines = [{"description": "Betreuung", "quantity": "1", "unit": "month", "unit_price": "450.00"},
                 {"description": "Hosting", "quantity": "1", "unit": "month", "unit_price": "50.00"}]
        # invoiced on the last day of January, then on each period's first day (month ends clamped)
        order = await known_client_order(orders, order_body(
            client, lines, {"mode": "recurring", "due_in_days": 14, "interval": "month",
                            "first_invoice_date": "2027-01-31"}, "2027-01-01", "2027-06-30"))
        active = await activated(orders, order)
        oid = order["order_id"]
        assert [(p["period_start"], p["net_amount"]) for p in active["schedule"]] == [
            ("2027-01-31", "500.00"), ("2027-02-28", "500.00"), ("2027-03-31", "500.00"), ("2027-04-30", "500.00"),
            ("2027-05-31", "500.00"), ("2027-06-30", "500.00")]
        await eventually(lambda: _planned(invoicing, oid, 6), what="invoicing planning the six invoices")
        drafted = await run_until(invoicing, oid, "2027-02-10", 1)  # January's is invoiced
        assert [i["net_total"] for i in drafted] == ["500.00"]

        changes = f"/orders/{oid}/price-changes"
        # inside the invoiced January period, or before it: refused with the reason
        r = await orders.http.post(changes, headers=MEMBER, json={"line": 1, "unit_price": "65.00",
                                                                  "effective_from": "2027-01-31"})
        assert r.status_code == 409 and "2027-01-31 – 2027-02-27 is invoiced already" in r.text, r.text
        # not the start of a billing period, an unknown line
        for body, loc in (({"line": 1, "unit_price": "65.00", "effective_from": "2027-03-15"}, "effective_from"),
                          ({"line": 5, "unit_price": "65.00", "effective_from": "2027-03-31"}, "line")):
            r = await orders.http.post(changes, headers=MEMBER, json=body)
            assert r.status_code == 422 and loc in r.json()["detail"][0]["loc"], r.text
        # another member's order is not found
        r = await orders.http.post(changes, headers=auth("member-2", "member"),
                                   json={"line": 1, "unit_price": "65.00", "effective_from": "2027-03-31"})
        assert r.status_code == 404, r.text

        changed = await ok(orders.http.post(changes, headers=MEMBER, json={
            "line": 1, "unit_price": "65.00", "effective_from": "2027-03-31"}))
        assert [p["net_amount"] for p in changed["schedule"]] == ["500.00", "500.00", "515.00", "515.00", "515.00",
                                                                   "515.00"]
        assert changed["lines"][1]["unit_price"] == "65.00"
        history = await ok(orders.http.get(f"/orders/{oid}/history", headers=MEMBER))
        entry = next(h for h in history if h["action"] == "change_price")
        assert (entry["details"]["unit_price_before"], entry["details"]["unit_price"],
                entry["details"]["effective_from"]) == ("50.00", "65.00", "2027-03-31")

        # invoicing replans the open planned invoices, and drafts them so
        async def replanned():
            net = await planned_net(invoicing.database, oid)
            return net if net.get(3) == "515.00" else None
        net = await eventually(replanned, timeout_s=60, what="invoicing replanning from March on")
        assert net == {1: "500.00", 2: "500.00", 3: "515.00", 4: "515.00", 5: "515.00", 6: "515.00"}
        drafts = await run_until(invoicing, oid, "2027-06-30", 6)
        assert [i["net_total"] for i in drafts] == ["500.00", "500.00", "515.00", "515.00", "515.00", "515.00"]
        assert [ln["unit_price"] for ln in drafts[2]["lines"]] == ["450.00", "65.00"]
        assert [ln["unit_price"] for ln in drafts[1]["lines"]] == ["450.00", "50.00"]


async def _planned(invoicing, order_id: str, count: int):
    planned = await planned_net(invoicing.database, order_id)
    return planned if len(planned) == count else None
