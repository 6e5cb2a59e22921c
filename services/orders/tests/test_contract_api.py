"""Contracts of recurring orders and tidy-up over HTTP, against real PostgreSQL and Kafka (issue 22 items 2, 6):
automatic renewal by the order run (next term planned, reminder before the deadline, once), pause and resume
changing the planned invoices, the future-revenue report following them, refusals with 409/422."""
import datetime as dt
import json
import uuid
from decimal import Decimal

import pytest
from orders_support import ADVISOR, MEMBER, MONTHLY, NOW, OTHER, active, known_client

from kontor.clock import FixedClock
from kontor.contracts.common import Actor
from kontor.contracts.invoices import InvoiceIssuedV1, InvoiceV1
from kontor.testing import eventually
from kontor.testing.kafka import publish_event, read_topic
from kontor.testing.services import ok, running_service
from kontor_orders.spec import SPEC

pytestmark = pytest.mark.integration
async def contract(svc, order_id, body, status=200):
    r = await svc.http.post(f"/orders/{order_id}/contract", json=body, headers=MEMBER)
    assert r.status_code == status, r.text
    return r.json()


async def test_renewal_reminder_pause_resume_and_the_report(infra, topic_prefix):
    clock = FixedClock(NOW)  # 22 Nov 2026; the order runs move it to their day
    async with running_service(SPEC, infra, topic_prefix=topic_prefix, clock=clock, order_runs_enabled=False,
                               renewal_reminder_days=14) as svc:
        client_id = await known_client(infra, topic_prefix)
        order = await active(svc, client_id, **MONTHLY)
        oid = order["order_id"]
        assert order["contract"]["kind"] == "one_off"
        bad = await contract(svc, oid, {"action": "auto_renew", "term_months": 0, "notice_months": 1}, 422)
        assert "term_months" in str(bad)
        o = await contract(svc, oid, {"action": "auto_renew", "term_months": 3, "notice_months": 1})
        assert (o["contract"]["notice_deadline"], o["contract"]["renews_until"]) == ("2027-02-28", "2027-06-30")

        async def run(day):
            clock.advance(dt.datetime.combine(dt.date.fromisoformat(day), NOW.timetz()) - clock.now())
            r = await svc.http.post("/order-runs", json={"as_of": day}, headers=ADVISOR)
            assert r.status_code == 200, r.text
            return (r.json()["reminded"], r.json()["renewed"])
        assert await run("2027-02-13") == (0, 0)  # 15 days before the deadline: no reminder yet
        assert await run("2027-02-14") == (1, 0)
        assert await run("2027-02-20") == (0, 0)  # once per term
        assert await run("2027-03-01") == (0, 1)  # the deadline has passed: renewed
        assert await run("2027-03-02") == (0, 0)  # idempotent
        o = (await svc.http.get(f"/orders/{oid}", headers=MEMBER)).json()
        assert o["service_end"] == "2027-06-30"
        assert [s["invoice_date"] for s in o["schedule"]] == [f"2027-0{m}-01" for m in range(1, 7)]
        assert o["contract"]["renewals"] == 1
        history = (await svc.http.get(f"/orders/{oid}/history", headers=MEMBER)).json()
        actions = [h["action"] for h in history]
        assert actions.count("contract_remind") == 1 and actions.count("contract_renew") == 1
        remind = next(h for h in history if h["action"] == "contract_remind")
        assert remind["details"]["notice_deadline"] == "2027-02-28"

        records = await read_topic(infra.kafka_bootstrap, f"{topic_prefix}kontor.orders.v1", min_count=6, timeout_s=30)
        published = [(r.type, json.loads(r.value or b"{}")) for r in records if r.key == oid
                     and r.type in ("kontor.order.updated.v1", "kontor.order.renewal-notice-due.v1")]
        assert [(t, e.get("changes", [{}])[0].get("action")) for t, e in published] == [
            ("kontor.order.updated.v1", "auto_renew"), ("kontor.order.renewal-notice-due.v1", None),
            ("kontor.order.updated.v1", "renew")]
        notice = published[1][1]
        assert (notice["notice_deadline"], notice["term_end"], notice["renews_until"], notice["term_months"]) == (
            "2027-02-28", "2027-03-31", "2027-06-30", 3)
        assert published[2][1]["order"]["service_end"] == "2027-06-30"
        assert published[2][1]["order"]["contract"]["renewals"] == 1

        # pause from May, resume from June: May has no planned invoice (a past day is refused, naming it)
        assert "from" in str(await contract(svc, oid, {"action": "pause", "from": "2027-02-01"}, 422))
        with_pause = await contract(svc, oid, {"action": "pause", "from": "2027-05-01"})
        assert [s["invoice_date"] for s in with_pause["schedule"]][-1] == "2027-04-01"
        await contract(svc, oid, {"action": "pause", "from": "2027-05-01"}, 409)
        resumed = await contract(svc, oid, {"action": "resume", "from": "2027-06-01"})
        dates = [s["invoice_date"] for s in resumed["schedule"]]
        assert dates == ["2027-01-01", "2027-02-01", "2027-03-01", "2027-04-01", "2027-06-01"]
        await run("2027-06-01")  # renewed until 30 Sep
        o = (await svc.http.get(f"/orders/{oid}", headers=MEMBER)).json()
        assert o["service_end"] == "2027-09-30" and o["contract"]["renews_until"] == "2027-12-31"
        # the report: the planned invoices (no May) and those of the term it will renew into (Oct to Dec)
        report = (await svc.http.get("/reports/future-revenue", params={"from": "2027-04-01", "to": "2027-12-31"},
                                     headers=MEMBER)).json()
        assert [(r["month"], r["net_amount"], r["invoices"], r["from_renewals"]) for r in report["rows"]] == [
            ("2027-04", "450.00", 1, 0), ("2027-06", "450.00", 1, 0), ("2027-07", "450.00", 1, 0),
            ("2027-08", "450.00", 1, 0), ("2027-09", "450.00", 1, 0), ("2027-10", "450.00", 1, 1),
            ("2027-11", "450.00", 1, 1), ("2027-12", "450.00", 1, 1)]
        planned = {s["invoice_date"][:7] for s in o["schedule"] if s["invoice_date"] >= "2027-04-01"}
        assert planned == {r["month"] for r in report["rows"] if not r["from_renewals"]}
        # past the deadline of the term ending 30 Sep (31 Aug), before the run renewed it: refused with the reason
        clock.advance(dt.timedelta(days=92))  # 1 Sep 2027
        refused = await contract(svc, oid, {"action": "cancel"}, 409)
        assert "2027-08-31" in str(refused)
        await run("2027-09-01")  # renewed until 31 Dec: cancelling now ends it then
        cancelled = await contract(svc, oid, {"action": "cancel"})
        assert (cancelled["contract"]["state"], cancelled["service_end"]) == ("cancelled", "2027-12-31")
        await run("2027-12-01")  # past the deadline of 30 Nov: no renewal
        o = (await svc.http.get(f"/orders/{oid}", headers=MEMBER)).json()
        assert o["service_end"] == "2027-12-31" and o["schedule"][-1]["invoice_date"] == "2027-12-01"
        r = await svc.http.post(f"/orders/{oid}/tidy-up", headers=MEMBER)
        assert r.status_code == 409, r.text


def issued(order: dict, number: str, net: str) -> InvoiceIssuedV1:
    invoice_id = uuid.uuid4()
    inv = InvoiceV1(invoice_id=invoice_id, number=number, order_id=order["order_id"], member_id=order["member_id"],
                    client_id=order["client"]["client_id"], client_name="ACME", currency=order["currency"],
                    issue_date=dt.date(2026, 11, 22), due_date=dt.date(2026, 12, 6), net_total=Decimal(net),
                    tax_total=Decimal(0), gross_total=Decimal(net), amount_due=Decimal(net))
    return InvoiceIssuedV1(invoice_id=invoice_id, client_id=inv.client_id, order_id=inv.order_id,
                           member_id=inv.member_id, occurred_at=NOW, actor=Actor(kind="system"), invoice=inv)


async def test_tidy_up_archives_the_fully_invoiced_lines_and_keeps_the_values(infra, topic_prefix):
    async with running_service(SPEC, infra, topic_prefix=topic_prefix, clock=FixedClock(NOW),
                               order_runs_enabled=False) as svc:
        client_id = await known_client(infra, topic_prefix)
        # the workshop (1280.00) billed on its own in January, the rest (3400.00) by the final invoice
        order = await active(svc, client_id, payment={"mode": "installments", "installments": [
            {"date": "2027-01-15", "lines": [0]}, {"date": "2027-03-31", "amount": "3400.00"}]})
        oid = order["order_id"]
        r = await svc.http.post(f"/orders/{oid}/tidy-up", headers=MEMBER)
        assert r.status_code == 409 and "no fully invoiced lines" in r.text
        r = await svc.http.post(f"/orders/{oid}/tidy-up", headers=OTHER)
        assert r.status_code == 404
        await publish_event(infra.kafka_bootstrap, topic_prefix, issued(order, "2027-000001", "1280.00"), time=NOW)

        async def recorded():
            o = (await svc.http.get(f"/orders/{oid}", headers=MEMBER)).json()
            return o if o["issued_invoices"] else None
        before = await eventually(recorded, what="the workshop's invoice recorded")
        tidied = await ok(svc.http.post(f"/orders/{oid}/tidy-up", headers=MEMBER))
        assert tidied["archive"] == [{"index": 0, "description": "Design workshop", "net_amount": "1280.00"}]
        assert (tidied["archived_lines"], tidied["open_lines"]) == ([0], [1])
        assert [ln["description"] for ln in tidied["lines"]] == ["Design workshop", "Implementation"]
        assert {k: tidied[k] for k in ("net_total", "plan_value", "order_value")} == {
            "net_total": "4680.00", "plan_value": "4680.00", "order_value": "1280.00"}
        assert {k: before[k] for k in ("net_total", "plan_value", "order_value")} == {
            "net_total": "4680.00", "plan_value": "4680.00", "order_value": "1280.00"}
        history = await ok(svc.http.get(f"/orders/{oid}/history", headers=MEMBER))
        assert history[-1]["action"] == "tidy_up" and history[-1]["details"]["descriptions"] == ["Design workshop"]
        r = await svc.http.post(f"/orders/{oid}/tidy-up", headers=MEMBER)
        assert r.status_code == 409
