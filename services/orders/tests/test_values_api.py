"""The three order values and the future-revenue report over HTTP, against real PostgreSQL and Kafka
(issue 22): values on the order, in its events and in the list (sorted, summed in headers); invoices
issued learnt from kontor.invoices.v1; the report from the planned invoices of active orders."""
import datetime as dt
import json
import re
import uuid
from decimal import Decimal

import pytest
from orders_support import ADVISOR, MEMBER, NOW, OTHER, act, created, known_client, order_body

from kontor.clock import FixedClock
from kontor.contracts.common import Actor
from kontor.contracts.invoices import DeductedInvoiceV1, InvoiceCancelledV1, InvoiceIssuedV1, InvoiceV1
from kontor.testing import eventually
from kontor.testing.kafka import publish_event, read_topic
from kontor.testing.services import running_service
from kontor_orders.spec import SPEC

pytestmark = pytest.mark.integration
def invoice_issued(order: dict, number: str, net: str, deductions: tuple[str, ...] = ()) -> InvoiceIssuedV1:
    invoice_id = uuid.uuid4()
    inv = InvoiceV1(invoice_id=invoice_id, number=number, order_id=order["order_id"], member_id=order["member_id"],
                    client_id=order["client"]["client_id"], client_name="ACME", currency=order["currency"],
                    issue_date=dt.date(2026, 11, 22), due_date=dt.date(2026, 12, 6), net_total=Decimal(net),
                    tax_total=Decimal(0), gross_total=Decimal(net), amount_due=Decimal(net),
                    deductions=tuple(DeductedInvoiceV1(invoice_id=uuid.uuid4(), number=f"D{i}",
                                                       issue_date=dt.date(2026, 11, 1), net_amount=Decimal(d),
                                                       gross_amount=Decimal(d)) for i, d in enumerate(deductions)))
    return InvoiceIssuedV1(invoice_id=invoice_id, client_id=inv.client_id, order_id=inv.order_id,
                           member_id=inv.member_id, occurred_at=NOW, actor=Actor(kind="system"), invoice=inv)


async def active(svc, client_id, headers=MEMBER, **changes) -> dict:
    order = await created(svc, client_id, headers, **changes)
    await act(svc, order["order_id"], "submit", headers)
    return await act(svc, order["order_id"], "approve", ADVISOR)


async def test_order_values_list_sorts_and_sums_and_the_future_revenue_report(infra, topic_prefix):
    async with running_service(SPEC, infra, topic_prefix=topic_prefix, clock=FixedClock(NOW),  # 22 Nov 2026
                               order_runs_enabled=False) as svc:
        client_id = await known_client(infra, topic_prefix)
        # A: 450.00 a month (an optional 200.00 a month is offered), invoiced on the 1st, Nov 2026 to Mar 2027
        a = await active(svc, client_id, lines=[
            {"description": "Maintenance", "quantity": "1", "unit": "month", "unit_price": "450.00"},
            {"description": "Support hotline", "quantity": "1", "unit": "month", "unit_price": "200.00",
             "kind": "optional"}],
            service_period={"start": "2026-11-01", "end": "2027-03-31"},
            payment={"mode": "recurring", "interval": "month", "first_invoice_date": "2026-11-01"})
        # B: 4680.00 in three installments of 30/30/40 % (15 Jan, 15 Feb, 31 Mar 2027)
        b = await active(svc, client_id)
        # C: 100.00 USD after completion, 10 Jan 2027
        c = await active(svc, client_id, currency="USD",
                         lines=[{"description": "Licence", "quantity": "1", "unit": "lump_sum",
                                 "unit_price": "100.00"}],
                         service_period={"start": "2027-01-01", "end": "2027-01-10"},
                         payment={"mode": "after_completion", "invoice_date": "2027-01-10"})
        # E: a draft of 999.00, never in the report
        e = await created(svc, client_id, MEMBER, lines=[
            {"description": "Idea", "quantity": "1", "unit": "lump_sum", "unit_price": "999.00"}], payment=None)

        assert [(s["invoice_date"], s["net_amount"], [ln["description"] for ln in s["lines"]])
                for s in a["schedule"]] == [(f"{d}-01", "450.00", ["Maintenance"])
                                            for d in ("2026-11", "2026-12", "2027-01", "2027-02", "2027-03")]
        assert [ln["kind"] for ln in a["lines"]] == ["regular", "optional"]
        assert (a["net_total"], a["plan_value"], a["order_value"], a["values_as_of"]) == (
            "450.00", "450.00", "0", "2026-11-22")
        assert (b["net_total"], b["plan_value"]) == ("4680.00", "4680.00")

        # invoices issued: A's first month; B's first installment and a final invoice deducting two
        await publish_event(infra.kafka_bootstrap, topic_prefix, invoice_issued(a, "2026-000001", "450.00"), time=NOW)
        await publish_event(infra.kafka_bootstrap, topic_prefix, invoice_issued(b, "2026-000002", "1404.00"), time=NOW)
        await publish_event(infra.kafka_bootstrap, topic_prefix,
                            invoice_issued(b, "2026-000003", "4680.00", ("1404.00", "1404.00")), time=NOW)

        async def recorded():
            ra = (await svc.http.get(f"/orders/{a['order_id']}", headers=MEMBER)).json()
            rb = (await svc.http.get(f"/orders/{b['order_id']}", headers=MEMBER)).json()
            return (ra, rb) if len(ra["issued_invoices"]) == 1 and len(rb["issued_invoices"]) == 2 else None
        ra, rb = await eventually(recorded, what="the issued invoices recorded")
        assert (ra["plan_value"], ra["order_value"]) == ("450.00", "450.00")
        assert (rb["plan_value"], rb["order_value"]) == ("4680.00", "3276.00")  # 1404.00 + (4680.00 - 2808.00)
        assert [i["net_amount"] for i in rb["issued_invoices"]] == ["1404.00", "1872.00"]

        # A's invoice cancelled: out of its order value (and back in by the cancellation of an unknown one: no)
        [a_invoice] = ra["issued_invoices"]
        cancellation = invoice_issued(a, "2026-000004", "450.00").invoice.model_copy(
            update={"kind": "cancellation", "cancels_invoice_id": uuid.UUID(a_invoice["invoice_id"])})
        for cancelled_id in (uuid.uuid4(), uuid.UUID(a_invoice["invoice_id"])):
            await publish_event(infra.kafka_bootstrap, topic_prefix, InvoiceCancelledV1(
                invoice_id=cancelled_id, client_id=cancellation.client_id, order_id=cancellation.order_id,
                member_id=cancellation.member_id, occurred_at=NOW, actor=Actor(kind="system"), number="2026-000001",
                currency="EUR", reason="wrong month", cancellation=cancellation), time=NOW)

        async def cancelled():
            o = (await svc.http.get(f"/orders/{a['order_id']}", headers=MEMBER)).json()
            return o if o["issued_invoices"][0]["cancelled"] else None
        ra = await eventually(cancelled, what="the cancellation recorded")
        assert (ra["net_total"], ra["plan_value"], ra["order_value"]) == ("450.00", "450.00", "0")
        history = (await svc.http.get(f"/orders/{a['order_id']}/history", headers=MEMBER)).json()
        assert [h["action"] for h in history].count("invoice_cancelled") == 1

        # the list: sorted by each value, summed per currency over the listed orders
        async def listed(**params):
            r = await svc.http.get("/orders", params=params, headers=MEMBER)
            assert r.status_code == 200, r.text
            return [o["order_id"] for o in r.json()], r.headers
        ids, headers = await listed(sort="-net_value")
        assert ids == [b["order_id"], e["order_id"], a["order_id"], c["order_id"]]
        assert headers["kontor-sum-net-value"] == "EUR 6129.00, USD 100.00"
        assert headers["kontor-sum-plan-value"] == "EUR 6129.00, USD 100.00"
        assert headers["kontor-sum-order-value"] == "EUR 3276.00, USD 0"  # B's 3276.00, A's 0
        ids, _ = await listed(sort="plan_value")
        assert ids == [c["order_id"], a["order_id"], e["order_id"], b["order_id"]]
        ids, _ = await listed(sort="-order_value")  # ties (A, C and E: 0) as the default order has them
        assert ids[0] == b["order_id"] and set(ids[1:]) == {a["order_id"], c["order_id"], e["order_id"]}
        ids, headers = await listed(sort="-net_value", limit=2)
        assert ids == [b["order_id"], e["order_id"]] and headers["kontor-sum-net-value"] == "EUR 5679.00"
        ids, headers = await listed(sort="-net_value", limit=2, offset=2)
        assert ids == [a["order_id"], c["order_id"]]
        assert headers["kontor-sum-net-value"] == "EUR 450.00, USD 100.00"
        ids, headers = await listed()  # newest first, as before (all created at the same instant here)
        assert len(ids) == 4 and headers["kontor-sum-net-value"] == "EUR 6129.00, USD 100.00"
        bad = await svc.http.get("/orders", params={"sort": "gross_value"}, headers=MEMBER)
        assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == ["query", "sort"]

        # another member's order: in the advisor's report only
        await active(svc, client_id, OTHER, lines=[
            {"description": "Audit", "quantity": "1", "unit": "lump_sum", "unit_price": "1000.00"}],
            service_period={"start": "2027-02-01", "end": "2027-02-28"},
            payment={"mode": "after_completion", "invoice_date": "2027-02-28"})

        async def report(headers, **params):
            r = await svc.http.get("/reports/future-revenue", params=params, headers=headers)
            assert r.status_code == 200, r.text
            return r.json()
        mine = await report(MEMBER, **{"from": "2026-12-01", "to": "2027-02-28", "group_by": "month"})
        assert mine == {"from": "2026-12-01", "to": "2027-02-28", "group_by": "month", "rows": [
            {"month": "2026-12", "currency": "EUR", "net_amount": "450.00", "invoices": 1, "from_renewals": 0},
            # 450.00 + 1404.00
            {"month": "2027-01", "currency": "EUR", "net_amount": "1854.00", "invoices": 2, "from_renewals": 0},
            {"month": "2027-01", "currency": "USD", "net_amount": "100.00", "invoices": 1, "from_renewals": 0},
            {"month": "2027-02", "currency": "EUR", "net_amount": "1854.00", "invoices": 2, "from_renewals": 0},
        ]}
        everyone = await report(ADVISOR, **{"from": "2026-12-01", "to": "2027-02-28"})
        assert everyone["rows"][-1] == {"month": "2027-02", "currency": "EUR", "net_amount": "2854.00", "invoices": 3,
                                        "from_renewals": 0}
        assert everyone["rows"][:3] == mine["rows"][:3]
        later = await report(MEMBER, **{"from": "2027-03-01", "to": "2027-12-31"})
        assert later["rows"] == [{"month": "2027-03", "currency": "EUR", "net_amount": "2322.00", "invoices": 2,
                                  "from_renewals": 0}]

        for params, loc in [({"from": "2027-13-01", "to": "2027-12-31"}, ["query", "from"]),
                            ({"from": "1999-12-31", "to": "2027-12-31"}, ["query", "from"]),
                            ({"from": "2027-01-01"}, ["query", "to"]),
                            ({"from": "2027-02-01", "to": "2027-01-31"}, ["query", "to"]),
                            ({"from": "2027-01-01", "to": "2027-01-31", "group_by": "week"}, ["query", "group_by"])]:
            r = await svc.http.get("/reports/future-revenue", params=params, headers=MEMBER)
            assert r.status_code == 422, (params, r.text)
            assert loc in [err["loc"] for err in r.json()["detail"]], (params, r.json())

        # the events carry the values (optional fields of OrderV1)
        records = await read_topic(infra.kafka_bootstrap, f"{topic_prefix}kontor.orders.v1", min_count=6)
        activated = [json.loads(r.value)["order"] for r in records
                     if r.key == a["order_id"] and r.type == "kontor.order.activated.v1"]
        assert [(o["net_total"], o["plan_value"], o["order_value"], o["values_as_of"]) for o in activated] == [
            ("450.00", "450.00", "0", "2026-11-22")]
        assert [ln["kind"] for ln in activated[0]["lines"]] == ["regular", "optional"]


async def test_the_confirmation_page_marks_optional_lines_outside_the_net_value(infra, topic_prefix):
    async with running_service(SPEC, infra, topic_prefix=topic_prefix, clock=FixedClock(NOW),
                               order_runs_enabled=False, public_base_url="https://kontor.example") as svc:
        client_id = await known_client(infra, topic_prefix)
        order = await created(svc, client_id, confirmation={"mode": "send", "offer_valid_until": "2026-12-15"},
                              lines=[{"description": "Workshop", "quantity": "2", "unit": "day",
                                      "unit_price": "640.00"},
                                     {"description": "Extra day", "quantity": "1", "unit": "day",
                                      "unit_price": "640.00", "kind": "optional"}],
                              payment={"mode": "after_completion", "invoice_date": "2027-03-31"})
        assert order["net_total"] == "1280.00"
        bad = await svc.http.post("/orders", headers=MEMBER, json=order_body(client_id, lines=[
            {"description": "x", "quantity": "1", "unit": "day", "unit_price": "1.00", "kind": "maybe"}]))
        assert bad.status_code == 422 and ["body", "lines", 0, "kind"] in [e["loc"] for e in bad.json()["detail"]]
        await act(svc, order["order_id"], "submit", MEMBER)
        await act(svc, order["order_id"], "approve", ADVISOR)
        records = await read_topic(infra.kafka_bootstrap, f"{topic_prefix}kontor.orders.v1", min_count=3)
        [sent] = [json.loads(r.value) for r in records if r.type == "kontor.order.sent-for-confirmation.v1"]
        page = await svc.http.get(sent["confirmation_url"].removeprefix("https://kontor.example"))
        assert page.status_code == 200
        rows = re.findall(r"<tr><td[^>]*>(.*?)</td>", page.text)
        assert rows[:2] == ["Workshop", 'Extra day <em class="kind">(optional, nicht im Auftragswert)</em>']
        assert re.search(r'id="net">([^<]+)<', page.text).group(1) == "1.280,00 EUR", page.text
