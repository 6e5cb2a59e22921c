"""The first vertical slice across services, over HTTP and the real broker:
clients registers a client and publishes it; orders learns it from Kafka and accepts
draft orders for it, and refuses unknown clients with a clear 422."""
import json
import uuid

import pytest

from kontor.testing import eventually
from kontor.testing.kafka import read_topic
from kontor.testing.services import auth, running_service
from kontor_clients.spec import SPEC as CLIENTS
from kontor_orders.spec import SPEC as ORDERS

pytestmark = pytest.mark.integration

ACME = {"kind": "company", "name": "ACME Werkstatt GmbH", "vat_id": "DE136695976",
        "address": {"street": "Hauptstraße 1", "postal_code": "10115", "city": "Berlin", "country": "de"},
        "invoice_email": "rechnung@acme.example", "language": "de"}
MEMBER = auth("member-1", "member")


def draft_for(client_id) -> dict:
    return {"client_id": str(client_id), "contact_person": {"name": "Erika Muster", "email": "erika@acme.example"},
            "currency": "EUR", "project_name": "Website relaunch",
            "lines": [{"description": "Design workshop", "quantity": "2", "unit": "day", "unit_price": "640.00"},
                      {"description": "Copy editing", "quantity": "3.5", "unit": "hour", "unit_price": "75.35"}]}


async def test_client_registered_on_clients_is_accepted_by_orders(infra, topic_prefix):
    async with running_service(CLIENTS, infra, topic_prefix=topic_prefix) as clients, \
            running_service(ORDERS, infra, topic_prefix=topic_prefix) as orders:
        created = await clients.http.post("/clients", json=ACME, headers=MEMBER)
        assert created.status_code == 201, created.text
        client = created.json()
        assert client["address"]["country"] == "DE" and client["standing"]["status"] == "ok"

        published = await read_topic(infra.kafka_bootstrap, f"{topic_prefix}kontor.clients.v1", min_count=1)
        assert [(r.type, r.key) for r in published] == [("kontor.client.registered.v1", client["id"])]
        assert published[0].headers["ce_source"] == "kontor/clients"

        async def draft_accepted():
            r = await orders.http.post("/orders", json=draft_for(client["id"]), headers=MEMBER)
            return r if r.status_code == 201 else None

        response = await eventually(draft_accepted, what="orders accepting the new client")
        order = response.json()
        assert order["status"] == "draft"
        assert order["client"]["name"] == "ACME Werkstatt GmbH"
        assert order["net_total"] == "1543.73"  # 2 × 640.00 + 3.5 × 75.35 = 1280.00 + 263.725 → 263.73
        assert [line["net_amount"] for line in order["lines"]] == ["1280.00", "263.73"]

        mine = await orders.http.get(f"/orders/{order['order_id']}", headers=MEMBER)
        assert mine.status_code == 200 and mine.json()["order_id"] == order["order_id"]
        other = await orders.http.get(f"/orders/{order['order_id']}", headers=auth("member-2", "member"))
        assert other.status_code == 404
        advisor = await orders.http.get(f"/orders/{order['order_id']}", headers=auth("advisor-1", "advisor"))
        assert advisor.status_code == 404, "drafts are invisible to advisors"

        unknown = await orders.http.post("/orders", json=draft_for(uuid.uuid4()), headers=MEMBER)
        assert unknown.status_code == 422
        [error] = unknown.json()["detail"]
        assert error["loc"] == ["body", "client_id"] and "unknown client" in error["msg"]


async def test_updates_of_one_client_reach_orders_in_order(infra, topic_prefix):
    async with running_service(CLIENTS, infra, topic_prefix=topic_prefix) as clients, \
            running_service(ORDERS, infra, topic_prefix=topic_prefix) as orders:
        client = (await clients.http.post("/clients", json=ACME, headers=MEMBER)).json()
        for i in range(1, 6):
            r = await clients.http.patch(f"/clients/{client['id']}", json={"name": f"ACME {i}"}, headers=MEMBER)
            assert r.status_code == 200 and r.json()["version"] == i + 1
        records = await read_topic(infra.kafka_bootstrap, f"{topic_prefix}kontor.clients.v1", min_count=6)
        versions = [json.loads(r.value)["client"]["version"] for r in records]
        assert versions == [1, 2, 3, 4, 5, 6]
        assert len({r.partition for r in records}) == 1, "one aggregate, one partition"

        async def name_in_orders():
            r = await orders.http.post("/orders", json=draft_for(client["id"]), headers=MEMBER)
            return r.json()["client"]["name"] == "ACME 5" if r.status_code == 201 else False

        await eventually(name_in_orders, what="orders' read model at the last version")
        assert dict(orders.worker.dispatchers[0].outcomes) == {"applied": 6}


@pytest.mark.parametrize("body, field", [
    ({**ACME, "address": {**ACME["address"], "country": "XX"}}, ["body", "address", "country"]),
    ({**ACME, "invoice_email": "not-an-address"}, ["body", "invoice_email"]),
    ({**ACME, "kind": "alien"}, ["body", "kind"]),
    ({k: v for k, v in ACME.items() if k != "name"}, ["body", "name"]),
])
async def test_bad_client_input_names_the_field(infra, topic_prefix, body, field):
    async with running_service(CLIENTS, infra, topic_prefix=topic_prefix, start_worker=False) as clients:
        r = await clients.http.post("/clients", json=body, headers=MEMBER)
        assert r.status_code == 422
        assert field in [e["loc"] for e in r.json()["detail"]], r.json()


async def test_requests_without_a_valid_token_are_refused(infra, topic_prefix):
    async with running_service(CLIENTS, infra, topic_prefix=topic_prefix, start_worker=False) as clients:
        assert (await clients.http.post("/clients", json=ACME)).status_code == 401
        bad = {"Authorization": "Bearer not.a.token"}
        assert (await clients.http.post("/clients", json=ACME, headers=bad)).status_code == 401


async def test_orders_read_model_follows_registration_update_and_standing(infra, topic_prefix):
    import sqlalchemy as sa

    from kontor.db import create_engine
    from kontor_orders.adapters.orm import known_clients

    async with running_service(CLIENTS, infra, topic_prefix=topic_prefix) as clients, \
            running_service(ORDERS, infra, topic_prefix=topic_prefix) as orders:
        client = (await clients.http.post("/clients", json=ACME, headers=MEMBER)).json()
        await clients.http.patch(f"/clients/{client['id']}", json={"invoice_email": "ap@acme.example"}, headers=MEMBER)
        blocked = await clients.http.put(f"/clients/{client['id']}/standing",
                                         json={"status": "blocked", "reason": "unpaid since spring"},
                                         headers=auth("advisor-1", "advisor"))
        assert blocked.status_code == 200 and blocked.json()["version"] == 3

        engine = create_engine(orders.settings.database_url)
        try:
            async def read_model():
                async with engine.connect() as conn:
                    row = (await conn.execute(sa.select(known_clients).where(
                        known_clients.c.id == uuid.UUID(client["id"])))).first()
                return row if row is not None and row.version == 3 else None

            row = await eventually(read_model, what="orders' read model at version 3")
        finally:
            await engine.dispose()
        assert row.standing == "blocked"
        assert row.snapshot["standing"]["reason"] == "unpaid since spring"
        assert row.snapshot["standing"]["source"] == "advisor"
        assert row.snapshot["invoice_email"] == "ap@acme.example"
        assert row.snapshot["vat_id"] == "DE136695976" and row.snapshot["address"]["city"] == "Berlin"
