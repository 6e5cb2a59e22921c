"""Who may change a client, against real PostgreSQL and Kafka: order events (published on the
broker as the orders service would) tell the clients service which members have orders for a
client, invoice events whether invoices were issued to it; a member then changes the billing
data only while nobody else relies on it, an advisor always; every change is in the history."""
import datetime as dt
import json
import uuid
from decimal import Decimal

import pytest

from kontor.clock import FixedClock
from kontor.contracts.common import Actor
from kontor.contracts.invoices import InvoiceIssuedV1, InvoiceV1
from kontor.contracts.orders import (
    ContactPersonV1,
    OrderClientV1,
    OrderRejectedV1,
    OrderSubmittedV1,
    OrderV1,
)
from kontor.testing import eventually
from kontor.testing.kafka import publish_event, read_topic
from kontor.testing.services import auth, running_service
from kontor_clients.spec import SPEC

pytestmark = pytest.mark.integration

NOW = dt.datetime(2026, 11, 23, 10, 0, tzinfo=dt.UTC)
MEMBER_1 = auth("member-1", "member")
MEMBER_2 = auth("member-2", "member")
ADVISOR = auth("advisor-1", "advisor")
ACME = {"kind": "company", "name": "ACME Werkstatt GmbH", "vat_id": "DE136695976",
        "address": {"street": "Hauptstraße 1", "postal_code": "10115", "city": "Berlin", "country": "DE"},
        "invoice_email": "rechnung@acme.example", "language": "de"}


def order(client_id: uuid.UUID, member_id: str, *, order_id: uuid.UUID | None = None, status: str = "smart_review",
          version: int = 2) -> OrderV1:
    return OrderV1(
        order_id=order_id or uuid.uuid4(), member_id=member_id, status=status,
        client=OrderClientV1(client_id=client_id, name="ACME Werkstatt GmbH", kind="company", country="DE"),
        contact_person=ContactPersonV1(name="Erika Mustermann", email="erika@acme.example"),
        currency="EUR", lines=(), net_total=Decimal("1000.00"), version=version)


def submitted(o: OrderV1) -> OrderSubmittedV1:
    return OrderSubmittedV1(order_id=o.order_id, order=o, occurred_at=NOW,
                            actor=Actor(kind="member", id=o.member_id))


def rejected(o: OrderV1) -> OrderRejectedV1:
    return OrderRejectedV1(order_id=o.order_id, order=o.model_copy(update={"status": "rejected",
                                                                           "version": o.version + 1}),
                           occurred_at=NOW, actor=Actor(kind="advisor", id="advisor-1"),
                           rejected_by="advisor", reason="not a freelance activity")


def issued(client_id: uuid.UUID, member_id: str) -> InvoiceIssuedV1:
    order_id, invoice_id = uuid.uuid4(), uuid.uuid4()
    invoice = InvoiceV1(invoice_id=invoice_id, number="2026-000001", kind="invoice", order_id=order_id,
                        member_id=member_id, client_id=client_id, client_name="ACME", currency="EUR",
                        issue_date=dt.date(2026, 11, 20), due_date=dt.date(2026, 12, 4),
                        net_total=Decimal("100.00"), tax_total=Decimal(0), gross_total=Decimal("100.00"),
                        amount_due=Decimal("100.00"))
    return InvoiceIssuedV1(invoice_id=invoice_id, client_id=client_id, order_id=order_id, member_id=member_id,
                           occurred_at=NOW, actor=Actor(kind="system", id="invoicing"), invoice=invoice)


async def test_billing_data_others_rely_on_is_changed_by_advisors_only(infra, topic_prefix):
    async with running_service(SPEC, infra, topic_prefix=topic_prefix, clock=FixedClock(NOW)) as svc:
        boot = infra.kafka_bootstrap
        client = (await svc.http.post("/clients", json=ACME, headers=MEMBER_1)).json()
        url = f"/clients/{client['id']}"
        client_id = uuid.UUID(client["id"])

        async def applied(count: int) -> None:
            await eventually(lambda: svc.worker.dispatchers[0].outcomes["applied"] >= count,
                             what=f"{count} events applied")

        async def change_email(headers: dict, email: str):
            return await svc.http.patch(url, json={"invoice_email": email}, headers=headers)

        async def email_now() -> str:
            return (await svc.http.get(url, headers=MEMBER_1)).json()["invoice_email"]

        # Nobody relies on the client yet: a member may change it.
        first = await change_email(MEMBER_1, "buchhaltung@acme.example")
        assert first.status_code == 200, first.text

        # With only their own order, still.
        own = order(client_id, "member-1")
        await publish_event(boot, topic_prefix, submitted(own), time=NOW)
        await applied(1)
        second = await change_email(MEMBER_1, "finanzen@acme.example")
        assert second.status_code == 200, second.text

        # Another member's order: this member may no longer redirect the invoices; the answer says why.
        others = order(client_id, "member-2")
        await publish_event(boot, topic_prefix, submitted(others), time=NOW)
        await applied(2)
        refused = await change_email(MEMBER_1, "attacker@evil.example")
        assert refused.status_code == 403, refused.text
        assert "only advisors" in refused.json()["detail"]
        assert "other members have orders" in refused.json()["detail"]
        assert "invoice_email" in refused.json()["detail"]
        assert "member-2" not in refused.json()["detail"], "who else works with the client is not told"
        for billing in ({"name": "ACME Holding GmbH"}, {"vat_id": None},
                        {"address": {**ACME["address"], "street": "Nebenstraße 2"}},
                        {"kind": "person", "vat_id": None}):
            r = await svc.http.patch(url, json=billing, headers=MEMBER_1)
            assert r.status_code == 403, (billing, r.text)
        assert (await change_email(MEMBER_2, "attacker@evil.example")).status_code == 403, \
            "the member with the order is refused too: member-1 has an order"
        assert await email_now() == "finanzen@acme.example"
        # Not billing data: the language of the documents anyone may change.
        language = await svc.http.patch(url, json={"language": "en"}, headers=MEMBER_1)
        assert language.status_code == 200, language.text
        # Resending the current e-mail changes nothing, so it is not refused.
        assert (await change_email(MEMBER_1, "finanzen@acme.example")).status_code == 200

        # An advisor may.
        by_advisor = await change_email(ADVISOR, "rechnungen@acme.example")
        assert by_advisor.status_code == 200, by_advisor.text
        assert by_advisor.json()["invoice_email"] == "rechnungen@acme.example"

        # A rejected order is never invoiced: it no longer ties the client to member-2.
        await publish_event(boot, topic_prefix, rejected(others), time=NOW)
        await applied(3)
        third = await change_email(MEMBER_1, "rechnung@acme.example")
        assert third.status_code == 200, third.text
        # A replayed older event of that order (a new envelope: not a duplicate) does not revive it.
        await publish_event(boot, topic_prefix, submitted(others), time=NOW)
        await applied(4)
        fourth = await change_email(MEMBER_1, "buchhaltung@acme.example")
        assert fourth.status_code == 200, fourth.text

        # Once an invoice is issued to it, only advisors change it, even for the only member with orders.
        await publish_event(boot, topic_prefix, issued(client_id, "member-1"), time=NOW)
        await applied(5)
        after_invoice = await change_email(MEMBER_1, "neu@acme.example")
        assert after_invoice.status_code == 403, after_invoice.text
        assert "invoices have already been issued" in after_invoice.json()["detail"]
        assert await email_now() == "buchhaltung@acme.example"
        assert (await change_email(ADVISOR, "neu@acme.example")).status_code == 200

        # Every change is in the history: who, when, before and after; refused attempts changed nothing.
        assert (await svc.http.get(f"{url}/history", headers=MEMBER_1)).status_code == 403
        history = (await svc.http.get(f"{url}/history", headers=ADVISOR)).json()
        assert [(h["action"], h["actor"]["kind"], h["actor"]["id"], h["client_version"], sorted(h["changes"]))
                for h in history] == [
            ("registered", "member", "member-1", 1,
             sorted(["kind", "name", "address", "vat_id", "leitweg_id", "invoice_email", "language", "zugferd"])),
            ("updated", "member", "member-1", 2, ["invoice_email"]),
            ("updated", "member", "member-1", 3, ["invoice_email"]),
            ("updated", "member", "member-1", 4, ["language"]),
            ("updated", "advisor", "advisor-1", 5, ["invoice_email"]),
            ("updated", "member", "member-1", 6, ["invoice_email"]),
            ("updated", "member", "member-1", 7, ["invoice_email"]),
            ("updated", "advisor", "advisor-1", 8, ["invoice_email"]),
        ]
        assert history[0]["changes"]["address"] == {"before": None, "after": ACME["address"]}
        assert history[4]["changes"]["invoice_email"] == {"before": "finanzen@acme.example",
                                                          "after": "rechnungen@acme.example"}
        assert history[7]["changes"]["invoice_email"] == {"before": "buchhaltung@acme.example",
                                                          "after": "neu@acme.example"}
        assert all(h["changed_at"] == NOW.isoformat().replace("+00:00", "Z") for h in history)
        unknown = await svc.http.get(f"/clients/{uuid.uuid4()}/history", headers=ADVISOR)
        assert unknown.status_code == 404

        # The events say who changed what, too.
        records = await read_topic(boot, f"{topic_prefix}kontor.clients.v1", min_count=8)
        updates = [json.loads(r.value) for r in records if r.type == "kontor.client.updated.v1"]
        assert [(u["actor"]["id"], sorted(u["changed_fields"])) for u in updates] == [
            (h["actor"]["id"], sorted(h["changes"])) for h in history[1:]]
        assert svc.worker.dispatchers[0].outcomes["dead_lettered"] == 0


INVALID_EMAILS = ["a\u0015b@acme.example", "rechnung@@acme", "a..b@acme.example", ".rechnung@acme.example",
                  "rechnung@acme", "rechnung@-acme.example", "rechnung@acme..example", ""]


async def test_invalid_invoice_emails_are_refused_naming_the_field(infra, topic_prefix):
    async with running_service(SPEC, infra, topic_prefix=topic_prefix, start_worker=False) as svc:
        client = (await svc.http.post("/clients", json=ACME, headers=MEMBER_1)).json()
        for email in INVALID_EMAILS:
            created = await svc.http.post("/clients", json={**ACME, "name": "Other GmbH", "vat_id": None,
                                                            "invoice_email": email}, headers=MEMBER_1)
            assert created.status_code == 422, (email, created.text)
            assert [e["loc"] for e in created.json()["detail"]] == [["body", "invoice_email"]], email
            patched = await svc.http.patch(f"/clients/{client['id']}", json={"invoice_email": email},
                                           headers=MEMBER_1)
            assert patched.status_code == 422, (email, patched.text)
            assert [e["loc"] for e in patched.json()["detail"]] == [["body", "invoice_email"]], email
        assert (await svc.http.get(f"/clients/{client['id']}", headers=MEMBER_1)).json()["invoice_email"] == \
            "rechnung@acme.example"
        # Addresses are stored as the validator normalises them (the domain in lower case).
        normalised = await svc.http.patch(f"/clients/{client['id']}", json={"invoice_email": " Rechnung@ACME.Example "},
                                          headers=MEMBER_1)
        assert normalised.status_code == 200 and normalised.json()["invoice_email"] == "Rechnung@acme.example"
