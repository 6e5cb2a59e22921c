"""What the orders service's HTTP tests share: the users, a client the service learns of through
Kafka (as from the clients service), an order's body and the calls that move it along."""
from __future__ import annotations

import datetime as dt
import uuid

from kontor.contracts.clients import ClientRegisteredV1, ClientSnapshotV1, ClientStandingV1
from kontor.contracts.common import Actor, Address
from kontor.testing import eventually
from kontor.testing.kafka import publish_event
from kontor.testing.services import auth

NOW = dt.datetime(2026, 11, 22, 10, 0, tzinfo=dt.UTC)
MEMBER = auth("member-1", "member")
OTHER = auth("member-2", "member")
ADVISOR = auth("advisor-1", "advisor")
SKIP = {"mode": "skip", "skip_reason": "framework contract signed"}


async def known_client(infra, prefix, *, name: str = "ACME", standing: str = "ok", language: str = "de",
                       kind: str = "company", vat_id: str | None = "DE136695976", country: str = "DE") -> uuid.UUID:
    """A client registered as the clients service publishes it, on the topics of `prefix`."""
    client_id = uuid.uuid4()
    snapshot = ClientSnapshotV1(client_id=client_id, kind=kind, name=name, vat_id=vat_id,
                                address=Address(street="Hauptstraße 1", postal_code="10115", city="Berlin",
                                                country=country),
                                invoice_email="rechnung@acme.example", language=language,
                                standing=ClientStandingV1(status=standing,
                                                          reason="unpaid" if standing != "ok" else None),
                                version=1)
    await publish_event(infra.kafka_bootstrap, prefix, ClientRegisteredV1(
        client_id=client_id, client=snapshot, occurred_at=NOW, actor=Actor(kind="member", id="member-1")), time=NOW)
    return client_id


def order_body(client_id, /, **changes) -> dict:
    """4680.00 EUR (2 days at 640.00, 40 hours at 85.00) in installments of 30/30/40 %, confirmation skipped."""
    return {
        "client_id": str(client_id), "contact_person": {"name": "Erika Muster", "email": "erika@acme.example"},
        "sector": "design", "place_of_service": "DE", "project_name": "Relaunch 2027",
        "description": "Redesign and implementation of the company website.",
        "lines": [{"description": "Design workshop", "quantity": "2", "unit": "day", "unit_price": "640.00"},
                  {"description": "Implementation", "quantity": "40", "unit": "hour", "unit_price": "85.00"}],
        "currency": "EUR", "service_period": {"start": "2027-01-01", "end": "2027-03-31"}, "confirmation": SKIP,
        "payment": {"mode": "installments", "due_in_days": 14, "installments": [
            {"date": "2027-01-15", "percentage": "30"}, {"date": "2027-02-15", "percentage": "30"},
            {"date": "2027-03-31", "percentage": "40"}]},
    } | changes


async def created(svc, client_id, /, headers=MEMBER, **changes) -> dict:
    """The order created from `order_body(client_id, **changes)`, once orders knows the client."""
    async def attempt():
        r = await svc.http.post("/orders", json=order_body(client_id, **changes), headers=headers)
        return r if r.status_code == 201 else None
    return (await eventually(attempt, what="orders knowing the client")).json()


async def act(svc, order_id, action, headers, body=None, expect=200) -> dict:
    r = await svc.http.post(f"/orders/{order_id}/{action}", json=body, headers=headers)
    assert r.status_code == expect, (action, r.text)
    return r.json()


async def active(svc, client_id, /, headers=MEMBER, **changes) -> dict:
    """The order created, submitted by the member and approved (its confirmation skipped: active)."""
    order = await created(svc, client_id, headers, **changes)
    await act(svc, order["order_id"], "submit", headers)
    return await act(svc, order["order_id"], "approve", ADVISOR)


# a recurring order: 450.00 a month from January to March 2027, invoiced monthly
MONTHLY = dict(lines=[{"description": "Maintenance", "quantity": "1", "unit": "month", "unit_price": "450.00"}],
               service_period={"start": "2027-01-01", "end": "2027-03-31"},
               payment={"mode": "recurring", "interval": "month", "first_invoice_date": "2027-01-01"})
