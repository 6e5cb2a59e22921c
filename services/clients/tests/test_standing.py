"""Standing and the debt rule against real PostgreSQL and Kafka: advisors set and lift it,
members cannot; invoice events published on the broker feed the receivables ledger and
restrict or release the client; duplicates change nothing."""
import datetime as dt
import json
import uuid
from decimal import Decimal

import pytest

from kontor.clock import BERLIN, FixedClock
from kontor.contracts.common import Actor
from kontor.contracts.invoices import (
    InvoiceCancelledV1,
    InvoiceIssuedV1,
    InvoicePaidV1,
    InvoicePaymentRecordedV1,
    InvoiceV1,
)
from kontor.testing import eventually
from kontor.testing.kafka import publish_event, read_topic
from kontor.testing.services import auth, running_service
from kontor_clients.spec import SPEC

pytestmark = pytest.mark.integration

NOW = dt.datetime(2026, 11, 22, 10, 0, tzinfo=dt.UTC)  # a Sunday; "today" of every test here
MEMBER = auth("member-1", "member")
ADVISOR = auth("advisor-1", "advisor")
SYSTEM = Actor(kind="system", id="invoicing")
ACME = {"kind": "company", "name": "ACME Werkstatt GmbH", "vat_id": "DE136695976",
        "address": {"street": "Hauptstraße 1", "postal_code": "10115", "city": "Berlin", "country": "DE"},
        "invoice_email": "rechnung@acme.example", "language": "de"}


def issued(client_id, *, due: dt.date, amount="1190.00", number="2026-000001", currency="EUR", kind="invoice"):
    order_id, invoice_id = uuid.uuid4(), uuid.uuid4()
    invoice = InvoiceV1(invoice_id=invoice_id, number=number, kind=kind, order_id=order_id, member_id="member-1",
                        client_id=client_id, client_name="ACME", currency=currency,
                        issue_date=due - dt.timedelta(days=14), due_date=due, net_total=Decimal(amount),
                        tax_total=Decimal(0), gross_total=Decimal(amount), amount_due=Decimal(amount))
    return InvoiceIssuedV1(invoice_id=invoice_id, client_id=client_id, order_id=order_id, member_id="member-1",
                           occurred_at=NOW, actor=SYSTEM, invoice=invoice)


def common(event: InvoiceIssuedV1) -> dict:
    return dict(invoice_id=event.invoice_id, client_id=event.client_id, order_id=event.order_id,
                member_id=event.member_id, occurred_at=NOW, actor=SYSTEM)


def payment(event, *, amount, paid_total, open_amount):
    return InvoicePaymentRecordedV1(**common(event), payment_id=uuid.uuid4(), number=event.invoice.number,
                                    currency=event.invoice.currency, amount=Decimal(amount), received_on=NOW.date(),
                                    paid_total=Decimal(paid_total), open_amount=Decimal(open_amount))


def paid(event):
    return InvoicePaidV1(**common(event), number=event.invoice.number, currency=event.invoice.currency,
                         paid_total=event.invoice.amount_due, paid_on=NOW.date())


async def standing_of(svc, client_id) -> dict:
    return (await svc.http.get(f"/clients/{client_id}", headers=MEMBER)).json()["standing"]


async def until_standing(svc, client_id, status, **kw):
    async def probe():
        s = await standing_of(svc, client_id)
        return s if s["status"] == status else None
    return await eventually(probe, what=f"client standing {status}", **kw)


async def test_advisors_set_and_lift_standing_members_cannot(infra, topic_prefix):
    async with running_service(SPEC, infra, topic_prefix=topic_prefix, clock=FixedClock(NOW)) as svc:
        client = (await svc.http.post("/clients", json=ACME, headers=MEMBER)).json()
        url = f"/clients/{client['id']}/standing"

        denied = await svc.http.put(url, json={"status": "blocked", "reason": "unpaid"}, headers=MEMBER)
        assert denied.status_code == 403
        assert (await svc.http.get(f"/clients/{client['id']}/standing-history", headers=MEMBER)).status_code == 403
        no_reason = await svc.http.put(url, json={"status": "blocked", "reason": "  "}, headers=ADVISOR)
        assert no_reason.status_code == 422 and no_reason.json()["detail"][0]["loc"] == ["body", "reason"]
        bad_status = await svc.http.put(url, json={"status": "suspended", "reason": "x y z"}, headers=ADVISOR)
        assert bad_status.status_code == 422 and bad_status.json()["detail"][0]["loc"] == ["body", "status"]
        unknown = await svc.http.put(f"/clients/{uuid.uuid4()}/standing", json={"status": "blocked", "reason": "why"},
                                     headers=ADVISOR)
        assert unknown.status_code == 404

        blocked = await svc.http.put(url, json={"status": "blocked", "reason": "insolvency proceedings"},
                                     headers=ADVISOR)
        assert blocked.status_code == 200
        assert blocked.json()["standing"] == {"status": "blocked", "reason": "insolvency proceedings",
                                              "source": "advisor", "since": NOW.isoformat().replace("+00:00", "Z")}
        again = await svc.http.put(url, json={"status": "blocked", "reason": "insolvency proceedings"}, headers=ADVISOR)
        assert again.json()["version"] == blocked.json()["version"], "setting the same standing again changes nothing"
        advance = await svc.http.put(url, json={"status": "advance_payment_only", "reason": "proceedings closed"},
                                     headers=ADVISOR)
        lifted = await svc.http.put(url, json={"status": "ok", "reason": "all settled"}, headers=ADVISOR)
        assert advance.status_code == lifted.status_code == 200

        history = (await svc.http.get(f"/clients/{client['id']}/standing-history", headers=ADVISOR)).json()
        assert [(h["previous_status"], h["status"], h["source"], h["set_by"]) for h in history] == [
            ("ok", "blocked", "advisor", "advisor-1"),
            ("blocked", "advance_payment_only", "advisor", "advisor-1"),
            ("advance_payment_only", "ok", "advisor", "advisor-1"),
        ]

        records = await read_topic(infra.kafka_bootstrap, f"{topic_prefix}kontor.clients.v1", min_count=4)
        changes = [json.loads(r.value) for r in records if r.type == "kontor.client.standing-changed.v1"]
        assert [(c["previous"]["status"], c["client"]["standing"]["status"]) for c in changes] == [
            ("ok", "blocked"), ("blocked", "advance_payment_only"), ("advance_payment_only", "ok")]
        first = changes[0]
        assert first["actor"] == {"kind": "advisor", "id": "advisor-1", "name": None}
        # the full billing data travels with every change
        assert first["client"]["vat_id"] == "DE136695976"
        assert first["client"]["invoice_email"] == "rechnung@acme.example"
        assert first["client"]["address"]["postal_code"] == "10115" and first["client"]["language"] == "de"
        assert first["client"]["standing"]["reason"] == "insolvency proceedings"


async def test_debt_rule_both_ways_through_invoice_events(infra, topic_prefix):
    async with running_service(SPEC, infra, topic_prefix=topic_prefix, clock=FixedClock(NOW)) as svc:
        client_id = uuid.UUID((await svc.http.post("/clients", json=ACME, headers=MEMBER)).json()["id"])
        boot = infra.kafka_bootstrap

        recent = issued(client_id, due=dt.date(2026, 11, 1), amount="500.00", number="2026-000010")
        old = issued(client_id, due=dt.date(2026, 9, 21), number="2026-000002")  # 2 months end 21 Nov: overdue
        jpy = issued(client_id, due=dt.date(2026, 12, 1), amount="100000", number="2026-000011", currency="JPY")
        await publish_event(boot, topic_prefix, recent, time=NOW)
        await publish_event(boot, topic_prefix, jpy, time=NOW)
        old_envelope = await publish_event(boot, topic_prefix, old, time=NOW)

        standing = await until_standing(svc, client_id, "advance_payment_only")
        assert standing["source"] == "debt_rule" and "2026-000002" in standing["reason"]

        async def all_three_in_the_ledger():  # the events travel on different partitions
            position = (await svc.http.get(f"/clients/{client_id}/receivables", headers=ADVISOR)).json()
            return position if len(position["open_invoices"]) == 3 else None
        position = await eventually(all_three_in_the_ledger, what="three invoices in the ledger")
        assert position["as_of"] == "2026-11-22"
        eur, jpy_position = position["currencies"]
        assert (eur["currency"], eur["open_amount"], eur["overdue_amount"], eur["overdue_invoices"]) == \
            ("EUR", "1690.00", "1690.00", 2)
        assert eur["oldest_overdue"]["number"] == "2026-000002" and eur["oldest_overdue"]["days_overdue"] == 62
        assert (jpy_position["open_amount"], jpy_position["overdue_amount"]) == ("100000", "0")
        assert (await svc.http.get(f"/clients/{client_id}/receivables", headers=MEMBER)).status_code == 403

        changed = [json.loads(r.value) | {"_h": r.headers} for r in await read_topic(
            boot, f"{topic_prefix}kontor.clients.v1", min_count=2) if r.type == "kontor.client.standing-changed.v1"]
        assert len(changed) == 1 and changed[0]["actor"]["kind"] == "system"
        assert changed[0]["_h"]["ce_causationid"] == str(old_envelope.id), "caused by the invoice event"

        # A partial payment leaves the debt; the redelivered duplicate of it changes nothing.
        part = payment(old, amount="1000.00", paid_total="1000.00", open_amount="190.00")
        envelope = await publish_event(boot, topic_prefix, part, time=NOW)
        await publish_event(boot, topic_prefix, part, time=NOW, envelope=envelope)
        await publish_event(boot, topic_prefix, old, time=NOW, envelope=old_envelope)  # "issued" again
        await eventually(lambda: svc.worker.dispatchers[0].outcomes["duplicate"] == 2, what="duplicates skipped")
        position = (await svc.http.get(f"/clients/{client_id}/receivables", headers=ADVISOR)).json()
        assert position["currencies"][0]["open_amount"] == "690.00"
        assert (await standing_of(svc, client_id))["status"] == "advance_payment_only"

        # Paid in full: the rule lifts its own restriction (the recent invoice is overdue, not 2 months).
        await publish_event(boot, topic_prefix, paid(old), time=NOW)
        standing = await until_standing(svc, client_id, "ok")
        assert standing["source"] == "debt_rule" and "cleared" in standing["reason"]
        history = (await svc.http.get(f"/clients/{client_id}/standing-history", headers=ADVISOR)).json()
        assert [(h["status"], h["source"]) for h in history] == [("advance_payment_only", "debt_rule"),
                                                                 ("ok", "debt_rule")]
        assert svc.worker.dispatchers[0].outcomes["dead_lettered"] == 0


async def test_the_rule_never_lifts_what_an_advisor_set(infra, topic_prefix):
    async with running_service(SPEC, infra, topic_prefix=topic_prefix, clock=FixedClock(NOW)) as svc:
        client_id = uuid.UUID((await svc.http.post("/clients", json=ACME, headers=MEMBER)).json()["id"])
        old = issued(client_id, due=dt.date(2026, 8, 1))
        await publish_event(infra.kafka_bootstrap, topic_prefix, old, time=NOW)
        await until_standing(svc, client_id, "advance_payment_only")
        r = await svc.http.put(f"/clients/{client_id}/standing", json={"status": "blocked", "reason": "no contact"},
                               headers=ADVISOR)
        assert r.status_code == 200
        cancelled = InvoiceCancelledV1(**common(old), number=old.invoice.number, currency="EUR", reason="wrong client",
                                       cancellation=old.invoice.model_copy(update={
                                           "invoice_id": uuid.uuid4(), "number": "2026-000003", "kind": "cancellation",
                                           "cancels_invoice_id": old.invoice_id}))
        await publish_event(infra.kafka_bootstrap, topic_prefix, cancelled, time=NOW)

        async def cleared():
            position = (await svc.http.get(f"/clients/{client_id}/receivables", headers=ADVISOR)).json()
            return position["currencies"][0]["open_amount"] == "0.00"
        await eventually(cleared, what="the cancellation reaching the ledger")
        assert (await standing_of(svc, client_id))["status"] == "blocked"


async def test_a_standing_run_as_of_a_later_date_than_today_is_refused_unless_allowed(infra, topic_prefix):
    async with running_service(SPEC, infra, topic_prefix=topic_prefix, clock=FixedClock(NOW),
                               standing_run_enabled=False) as svc:
        today = NOW.astimezone(BERLIN).date()
        later = await svc.http.post("/standing-runs", json={"as_of": (today + dt.timedelta(days=1)).isoformat()},
                                    headers=ADVISOR)
        assert later.status_code == 422, later.text
        assert later.json()["detail"][0]["loc"] == ["body", "as_of"]
        assert "must not be after today" in later.json()["detail"][0]["msg"]
        assert (await svc.http.get("/standing-runs", headers=ADVISOR)).json() == [], "nothing was run"
        now = await svc.http.post("/standing-runs", json={"as_of": today.isoformat()}, headers=ADVISOR)
        assert now.status_code == 201, now.text


async def test_standing_run_as_of_a_date(infra, topic_prefix):
    async with running_service(SPEC, infra, topic_prefix=topic_prefix, clock=FixedClock(NOW),
                               standing_run_enabled=False, allow_future_as_of=True) as svc:
        ids = [uuid.UUID((await svc.http.post("/clients", json={**ACME, "vat_id": None, "name": f"Client {i}"},
                                               headers=MEMBER)).json()["id"]) for i in range(3)]
        # due 10 Nov: overdue today, restricting from 11 Jan 2027; the third client owes nothing
        await publish_event(infra.kafka_bootstrap, topic_prefix, issued(ids[0], due=dt.date(2026, 11, 10)), time=NOW)
        await publish_event(infra.kafka_bootstrap, topic_prefix,
                            issued(ids[1], due=dt.date(2026, 11, 20), number="2026-000005"), time=NOW)

        async def in_ledger():
            positions = [(await svc.http.get(f"/clients/{i}/receivables", headers=ADVISOR)).json() for i in ids[:2]]
            return all(p["open_invoices"] for p in positions)
        await eventually(in_ledger, what="both invoices in the ledger")

        assert (await svc.http.post("/standing-runs", json={"as_of": "2027-01-11"}, headers=MEMBER)).status_code == 403
        bad = await svc.http.post("/standing-runs", json={"as_of": "11.01.2027"}, headers=ADVISOR)
        assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == ["body", "as_of"]

        run = await svc.http.post("/standing-runs", json={"as_of": "2027-01-10"}, headers=ADVISOR)
        assert run.status_code == 201
        assert {k: run.json()[k] for k in ("as_of", "evaluated", "restricted", "lifted", "trigger")} == \
            {"as_of": "2027-01-10", "evaluated": 2, "restricted": 0, "lifted": 0, "trigger": "advisor"}
        run = (await svc.http.post("/standing-runs", json={"as_of": "2027-01-11"}, headers=ADVISOR)).json()
        assert (run["evaluated"], run["restricted"], run["lifted"]) == (2, 1, 0)
        assert [(await standing_of(svc, i))["status"] for i in ids] == ["advance_payment_only", "ok", "ok"]

        # A run's restriction stays until the client's own invoices change; events of another
        # client's invoices do not touch it. (Later events are judged as of today, never as of
        # the run's date: tests/test_runs_and_dates.py.)
        other = issued(ids[2], due=dt.date(2026, 12, 1), number="2026-000006")
        await publish_event(infra.kafka_bootstrap, topic_prefix, other, time=NOW)
        await publish_event(infra.kafka_bootstrap, topic_prefix, paid(other), time=NOW)
        await eventually(lambda: svc.worker.dispatchers[0].outcomes["applied"] >= 4, what="events applied")
        assert (await standing_of(svc, ids[0]))["status"] == "advance_payment_only"

        runs = (await svc.http.get("/standing-runs", headers=ADVISOR)).json()
        assert [r["as_of"] for r in runs] == ["2027-01-11", "2027-01-10"] and all(r["finished_at"] for r in runs)


async def test_events_for_invoices_never_issued_go_to_the_dead_letter_topic(infra, topic_prefix):
    async with running_service(SPEC, infra, topic_prefix=topic_prefix, clock=FixedClock(NOW)) as svc:
        client_id = uuid.UUID((await svc.http.post("/clients", json=ACME, headers=MEMBER)).json()["id"])
        stray = paid(issued(client_id, due=dt.date(2026, 11, 1)))
        await publish_event(infra.kafka_bootstrap, topic_prefix, stray, time=NOW)
        [dead] = await read_topic(infra.kafka_bootstrap, f"{topic_prefix}kontor.invoices.v1.dlq.kontor-clients")
        assert dead.key == str(stray.invoice_id)
        assert "never issued" in dead.headers["x-dlq-error"]
