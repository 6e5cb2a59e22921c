"""Published contracts and AsyncAPI documents: the committed files equal what the code generates."""
import json

import pytest

from kontor.asyncapi import build_document
from kontor.contracts.snapshots import SNAPSHOT_DIR, published_contracts, render
from kontor_clients.spec import SPEC as CLIENTS
from kontor_invoicing.spec import SPEC as INVOICING
from kontor_notifications.spec import SPEC as NOTIFICATIONS
from kontor_orders.spec import SPEC as ORDERS

pytestmark = pytest.mark.unit
REGENERATE = "run `make generate` and commit the result"


def test_every_contract_has_a_committed_json_schema_snapshot():
    contracts = published_contracts()
    assert contracts, "no contracts found"
    committed = {p.name.removesuffix(".schema.json") for p in SNAPSHOT_DIR.glob("*.schema.json")}
    assert committed == set(contracts), REGENERATE
    for event_type, contract in contracts.items():
        assert (SNAPSHOT_DIR / f"{event_type}.schema.json").read_text() == render(contract), \
            f"{event_type} changed: a breaking change needs a new version; otherwise {REGENERATE}"


@pytest.mark.parametrize("spec", [CLIENTS, ORDERS, INVOICING, NOTIFICATIONS], ids=lambda s: s.name)
def test_committed_asyncapi_document_matches_the_code(spec):
    generated = build_document(spec)
    assert json.loads(spec.asyncapi_path.read_text()) == generated, REGENERATE
    assert generated["asyncapi"] == "3.0.0"


def test_asyncapi_describes_what_clients_publish_and_orders_consume():
    document = build_document(CLIENTS)
    messages = document["components"]["messages"]
    sent = {messages[op["messages"][0]["$ref"].rsplit("/", 1)[1]]["name"]
            for op in document["operations"].values() if op["action"] == "send"}
    received = {messages[op["messages"][0]["$ref"].rsplit("/", 1)[1]]["name"]
                for op in document["operations"].values() if op["action"] == "receive"}
    assert sent == {"kontor.client.registered.v1", "kontor.client.updated.v1", "kontor.client.standing-changed.v1"}
    assert received == {"kontor.invoice.issued.v1", "kontor.invoice.payment-recorded.v1", "kontor.invoice.paid.v1",
                        "kontor.invoice.cancelled.v1"} | {c.event_type for c in ORDERS.publishes}  # who has orders
    consumed = build_document(ORDERS)
    receives = [op for op in consumed["operations"].values() if op["action"] == "receive"]
    assert len(receives) == 5  # the three client events, invoice.issued and invoice.cancelled (the order value)
    assert {op["bindings"]["kafka"]["groupId"]["enum"][0] for op in receives} == {"kontor-orders"}
    payload = consumed["components"]["schemas"]["ClientRegisteredV1"]
    assert {"client_id", "client", "occurred_at", "actor"} <= set(payload["required"])
