"""Runs "as of" a date and what they change, across the clients and invoicing services over real
Kafka and PostgreSQL: a standing run as of a later date never makes the debt rule judge later
invoice events as of that date (only what is true today counts), and invoicing refuses a billing
run as of a later date than today unless the deployment allows it."""
from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal as D

import pytest

from kontor.clock import FixedClock
from kontor.contracts.common import Actor
from kontor.contracts.orders import (
    ContactPersonV1,
    OrderActivatedV1,
    OrderClientV1,
    OrderLineV1,
    OrderV1,
    PaymentTermsV1,
    PlannedInvoiceV1,
    VatV1,
)
from kontor.testing import eventually
from kontor.testing.kafka import publish_event
from kontor.testing.services import auth, running_service
from kontor_clients.spec import SPEC as CLIENTS
from kontor_invoicing.spec import SPEC as INVOICING

pytestmark = pytest.mark.integration
NOW = dt.datetime(2026, 12, 1, 9, tzinfo=dt.UTC)  # today of both services
MEMBER = auth("member-1", "member")
ADVISOR = auth("advisor-1", "advisor")
LINE = OrderLineV1(description="Beratung", quantity=D(1), unit="lump_sum", unit_price=D("1000.00"),
                   net_amount=D("1000.00"))


def order_for(client: dict) -> OrderActivatedV1:
    """An activated order of one advance invoice dated 20 Nov 2026 (14 days to pay)."""
    order = OrderV1(
        order_id=uuid.uuid4(), member_id="member-1", status="active",
        client=OrderClientV1(client_id=client["id"], name=client["name"], kind="company", country="DE"),
        contact_person=ContactPersonV1(name="Erika Muster", email="erika@acme.example"), currency="EUR",
        lines=(LINE,), net_total=LINE.net_amount,
        vat=(VatV1(category="S", rate=D(19), taxable_amount=LINE.net_amount, tax_amount=D("190.00")),),
        payment=PaymentTermsV1(mode="advance", due_in_days=14), version=5,
        schedule=(PlannedInvoiceV1(seq=1, kind="advance", invoice_date=dt.date(2026, 11, 20),
                                   due_date=dt.date(2026, 12, 4), lines=(LINE,), net_amount=LINE.net_amount),))
    return OrderActivatedV1(order_id=order.order_id, order=order, occurred_at=NOW, actor=Actor(kind="client"))


async def test_a_standing_run_as_of_a_later_date_does_not_judge_later_invoices_by_it(infra, topic_prefix):
    common = dict(topic_prefix=topic_prefix, clock=FixedClock(NOW))
    async with running_service(CLIENTS, infra, **common, standing_run_enabled=False,
                               allow_future_as_of=True) as clients, \
            running_service(INVOICING, infra, **common, billing_runs_enabled=False) as invoicing:
        async def registered(name: str) -> dict:
            r = await clients.http.post("/clients", headers=MEMBER, json={
                "kind": "company", "name": name, "invoice_email": "rechnung@acme.example", "language": "de",
                "address": {"street": "Hauptstraße 1", "postal_code": "10115", "city": "Berlin", "country": "DE"}})
            assert r.status_code == 201, r.text
            return r.json()

        async def billed(client: dict) -> dict:
            """Its order published, billing runs as of today until its invoice is in the clients'
            ledger: the receivable."""
            await publish_event(infra.kafka_bootstrap, topic_prefix, order_for(client), time=NOW)

            async def in_ledger():
                r = await invoicing.http.post("/billing-runs", json={}, headers=ADVISOR)  # today's
                assert r.status_code in (200, 202), r.text
                position = (await clients.http.get(f"/clients/{client['id']}/receivables", headers=ADVISOR)).json()
                return position["open_invoices"] or None
            [receivable] = await eventually(in_ledger, timeout_s=90, interval_s=0.3,
                                            what=f"the invoice of {client['name']} in the clients' ledger")
            return receivable

        async def standing(client: dict) -> dict:
            return (await clients.http.get(f"/clients/{client['id']}", headers=ADVISOR)).json()["standing"]

        future = await invoicing.http.post("/billing-runs", json={"as_of": "2027-06-15"}, headers=ADVISOR)
        assert future.status_code == 422 and future.json()["detail"][0]["loc"] == ["body", "as_of"], future.text

        early, late = await registered("Frühbucher GmbH"), await registered("Spätbucher GmbH")
        first = await billed(early)
        assert first["due_date"] == "2026-12-15", "issued as of today, 14 days to pay"
        assert (await standing(early))["status"] == "ok"

        # An advisor looks ahead: a standing run as of mid-2027 restricts the client whose invoice
        # would then be more than two months past due.
        run = await clients.http.post("/standing-runs", json={"as_of": "2027-06-15"}, headers=ADVISOR)
        assert run.status_code == 201 and run.json()["restricted"] == 1, run.text
        assert (await standing(early))["status"] == "advance_payment_only"

        # A later invoice of the same terms is judged as of today: not even due yet, no restriction.
        second = await billed(late)
        assert second["due_date"] == "2026-12-15"
        judged = await standing(late)
        assert judged["status"] == "ok", judged
