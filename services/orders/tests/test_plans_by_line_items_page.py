"""A plan by line items on the client's confirmation page and in the published order, over real Kafka and
PostgreSQL (issue 22, item 1): each installment shows what it bills, its lines by name, with its net, VAT and
gross; the activated order's events carry the entries' lines."""
import json
import re

import pytest
from orders_support import ADVISOR, MEMBER, NOW, known_client

from kontor.clock import FixedClock
from kontor.testing import eventually
from kontor.testing.kafka import read_topic
from kontor.testing.services import ok, running_service
from kontor_orders.spec import SPEC

pytestmark = pytest.mark.integration


def cells(html: str) -> list[list[str]]:
    table = re.search(r'<table id="installments".*?</table>', html, re.S)
    assert table, html
    rows = re.findall(r"<tr>(.*?)</tr>", table.group(0), re.S)[1:]
    return [[re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", c)).strip() for c in re.findall(r"<td[^>]*>(.*?)</td>", r,
                                                                                       re.S)] for r in rows]


async def test_the_confirmation_page_shows_the_lines_each_installment_bills(infra, topic_prefix):
    async with running_service(SPEC, infra, topic_prefix=topic_prefix, clock=FixedClock(NOW),
                               order_runs_enabled=False, public_base_url="https://kontor.example") as svc:
        client_id = await known_client(infra, topic_prefix)
        body = {
            "client_id": str(client_id), "contact_person": {"name": "Erika Muster", "email": "erika@acme.example"},
            "sector": "design", "place_of_service": "DE", "project_name": "Relaunch", "description": "Website",
            "lines": [{"description": "Konzept", "quantity": "1", "unit": "lump_sum", "unit_price": "1200.00"},
                      {"description": "Hosting", "quantity": "1", "unit": "lump_sum", "unit_price": "500.00",
                       "kind": "optional"},
                      {"description": "Design", "quantity": "2", "unit": "day", "unit_price": "900.00"},
                      {"description": "Umsetzung", "quantity": "1", "unit": "lump_sum", "unit_price": "2400.00"}],
            "currency": "EUR", "service_period": {"start": "2027-01-01", "end": "2027-03-31"},
            "confirmation": {"mode": "send", "offer_valid_until": "2026-12-15"},
            "payment": {"mode": "installments", "due_in_days": 14, "installments": [
                {"date": "2027-01-15", "lines": [0, 2]}, {"date": "2027-03-31", "amount": "2400.00"}]}}

        async def accepted():
            r = await svc.http.post("/orders", json=body, headers=MEMBER)
            assert r.status_code == 201 or "unknown client" in r.text, r.text
            return r.json() if r.status_code == 201 else None
        order = await eventually(accepted, what="orders knowing the client")
        oid = order["order_id"]
        # a draft can be corrected: a plan naming the optional line is refused on PUT as on POST
        bad = body | {"payment": body["payment"] | {"installments": [
            {"date": "2027-01-15", "lines": [0, 1]}, {"date": "2027-03-31", "amount": "4200.00"}]}}
        r = await svc.http.put(f"/orders/{oid}", json=bad, headers=MEMBER)
        assert r.status_code == 422 and r.json()["detail"][0]["loc"] == [
            "body", "payment", "installments", "0", "lines", "1"], r.text
        await ok(svc.http.post(f"/orders/{oid}/submit", headers=MEMBER))
        await ok(svc.http.post(f"/orders/{oid}/approve", headers=ADVISOR))
        records = await read_topic(infra.kafka_bootstrap, f"{topic_prefix}kontor.orders.v1", min_count=3)
        [sent] = [json.loads(r.value) for r in records if r.type == "kontor.order.sent-for-confirmation.v1"]
        assert [i["lines"] for i in sent["order"]["payment"]["installments"]] == [[0, 2], []]
        page = await svc.http.get(sent["confirmation_url"].removeprefix("https://kontor.example"))
        assert page.status_code == 200
        # 3,000.00 net for concept and design (570.00 VAT), the remaining 2,400.00 (456.00 VAT)
        assert cells(page.text) == [["15.01.2027", "Konzept, Design", "3.000,00 EUR", "570,00 EUR", "3.570,00 EUR"],
                                    ["31.03.2027", "Rest", "2.400,00 EUR", "456,00 EUR", "2.856,00 EUR"]]
