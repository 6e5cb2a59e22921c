"""Invoicing against real PostgreSQL and Kafka, driven by published order and client events
and by billing runs "as of" dates."""
import asyncio
import datetime as dt
import json
import sys
import uuid
from decimal import Decimal
from pathlib import Path

import pytest

from kontor.clock import FixedClock
from kontor.contracts.clients import ClientRegisteredV1, ClientSnapshotV1, ClientStandingV1
from kontor.contracts.common import Actor, Address
from kontor.contracts.orders import (
    ContactPersonV1,
    OrderActivatedV1,
    OrderCancelledV1,
    OrderClientV1,
    OrderLineV1,
    OrderV1,
    PaymentTermsV1,
    PlannedInvoiceV1,
    VatV1,
)
from kontor.testing import eventually
from kontor.testing.kafka import publish_event, read_topic
from kontor.testing.services import auth, running_service
from kontor_invoicing.spec import SPEC

pytestmark = pytest.mark.integration
D = Decimal
NOW = dt.datetime(2026, 12, 1, 9, tzinfo=dt.UTC)
MEMBER = auth("member-1", "member")
ADVISOR = auth("advisor-1", "advisor")
RULES = Path(__file__).resolve().parents[4] / "shared" / "xrechnung"
# Most tests play 2027 through from NOW (1 Dec 2026): with runs as of 2027's dates, which the
# service accepts only when told to (allow_future_as_of); test_runs_and_dates.py tests the refusal.


def official_validator():
    if not (RULES / "validate.py").exists():
        pytest.skip(f"official X-Rechnung rules not found at {RULES}")
    sys.path.insert(0, str(RULES))
    from validate import validate

    return validate


async def register_client(infra, prefix, **details) -> ClientSnapshotV1:
    snapshot = ClientSnapshotV1(
        client_id=uuid.uuid4(), kind="company", name="ACME Werkstatt GmbH", vat_id="DE811569869",
        address=Address(street="Hauptstraße 1", postal_code="10115", city="Berlin", country="DE"),
        invoice_email="rechnung@acme.example", language="de", standing=ClientStandingV1(status="ok"), version=1,
        **details)
    await publish_event(infra.kafka_bootstrap, prefix, ClientRegisteredV1(
        client_id=snapshot.client_id, client=snapshot, occurred_at=NOW, actor=Actor(kind="member")), time=NOW)
    return snapshot


LINES = (OrderLineV1(description="Design workshop", quantity=D(2), unit="day", unit_price=D("640.00"),
                     net_amount=D("1280.00")),
         OrderLineV1(description="Implementation", quantity=D(40), unit="hour", unit_price=D("85.00"),
                     net_amount=D("3400.00")))


def activated(client: ClientSnapshotV1, schedule, mode="installments", lines=LINES) -> OrderActivatedV1:
    net = sum(ln.net_amount for ln in lines)
    order = OrderV1(
        order_id=uuid.uuid4(), member_id="member-1", status="active",
        client=OrderClientV1(client_id=client.client_id, name=client.name, kind="company", vat_id=client.vat_id,
                             country="DE", language="de"),
        contact_person=ContactPersonV1(name="Erika Muster", email="erika@acme.example"), sector="design",
        place_of_service="DE", project_name="Relaunch 2027", description="Website relaunch", currency="EUR",
        lines=lines, net_total=net, vat=(VatV1(category="S", rate=D(19), taxable_amount=net,
                                               tax_amount=(net * D("0.19")).quantize(D("0.01"))),),
        service_start=dt.date(2027, 1, 1), service_end=dt.date(2027, 12, 31), confirmation_mode="send",
        payment=PaymentTermsV1(mode=mode, due_in_days=14), schedule=tuple(schedule), version=5)
    return OrderActivatedV1(order_id=order.order_id, order=order, occurred_at=NOW, actor=Actor(kind="client"))


def installments(lines=LINES):
    one = (OrderLineV1(description="Abschlag 1/3", quantity=D(1), unit="lump_sum", unit_price=D("1404.00"),
                       net_amount=D("1404.00")),)
    two = (OrderLineV1(description="Abschlag 2/3", quantity=D(1), unit="lump_sum", unit_price=D("1404.00"),
                       net_amount=D("1404.00")),)
    return [PlannedInvoiceV1(seq=1, kind="installment", invoice_date=dt.date(2027, 1, 15),
                             due_date=dt.date(2027, 1, 29), lines=one, net_amount=D("1404.00")),
            PlannedInvoiceV1(seq=2, kind="installment", invoice_date=dt.date(2027, 2, 15),
                             due_date=dt.date(2027, 3, 1), lines=two, net_amount=D("1404.00")),
            PlannedInvoiceV1(seq=3, kind="final", invoice_date=dt.date(2027, 3, 31), due_date=dt.date(2027, 4, 14),
                             lines=lines, net_amount=D("1872.00"), deducted=D("2808.00"))]


async def active_order(infra, prefix, **client_details) -> OrderActivatedV1:
    """A registered client and its order with three installments, activated."""
    event = activated(await register_client(infra, prefix, **client_details), installments())
    await publish_event(infra.kafka_bootstrap, prefix, event, time=NOW)
    return event


async def run(svc, as_of: str) -> dict:
    """A billing run through the API, followed until it ends: its report."""
    r = await svc.http.post("/billing-runs", json={"as_of": as_of}, headers=ADVISOR)
    assert r.status_code in (200, 202), r.text
    assert r.headers["location"] == f"/billing-runs/{r.json()['run_id']}"
    return await ended(svc, r.json()["run_id"])


async def ended(svc, run_id: str) -> dict:
    async def report():
        r = await svc.http.get(f"/billing-runs/{run_id}", headers=ADVISOR)
        assert r.status_code == 200, r.text
        return r.json() if r.json()["status"] in ("finished", "failed") else None
    return await eventually(report, timeout_s=90, interval_s=0.1, what=f"billing run {run_id} ended")


async def settled(svc, invoice_id: str, status: str) -> dict:
    async def reached():
        r = (await svc.http.get(f"/invoices/{invoice_id}", headers=ADVISOR)).json()
        return r if r["status"] == status else None
    return await eventually(reached, timeout_s=60, interval_s=0.1, what=f"invoice {invoice_id} {status}")


async def invoices_of(svc, order_id, headers=ADVISOR) -> list[dict]:
    r = await svc.http.get("/invoices", params={"order_id": str(order_id)}, headers=headers)
    return sorted(r.json(), key=lambda i: (i["kind"], i["invoice_date"] or ""))


async def test_three_installments_payments_cancellation_and_reminders(infra, topic_prefix):
    validate = official_validator()
    async with running_service(SPEC, infra, topic_prefix=topic_prefix, clock=FixedClock(NOW),
                               billing_runs_enabled=False, allow_future_as_of=True, xrechnung_rules_dir=RULES,
                               public_base_url="https://invoicing.example") as svc:
        client = await register_client(infra, topic_prefix)
        event = activated(client, installments())
        envelope = await publish_event(infra.kafka_bootstrap, topic_prefix, event, time=NOW)
        await publish_event(infra.kafka_bootstrap, topic_prefix, event, time=NOW, envelope=envelope)  # duplicate
        order_id = event.order_id

        async def planned():
            return (await run(svc, "2027-01-08"))["drafted"] == 1
        await eventually(planned, what="the first draft 7 days before 15 Jan")
        assert (await run(svc, "2027-01-08"))["drafted"] == 0, "never drafted twice"
        [draft] = await invoices_of(svc, order_id)
        assert (draft["status"], draft["number"], draft["invoice_date"]) == ("draft", None, "2027-01-15")
        assert (await invoices_of(svc, order_id, MEMBER))[0]["invoice_id"] == draft["invoice_id"]
        assert await invoices_of(svc, order_id, auth("member-2", "member")) == []

        report = await run(svc, "2027-01-15")
        assert (report["drafted"], report["issued"]) == (0, 1)
        first = (await invoices_of(svc, order_id))[0]
        assert (first["status"], first["number"], first["due_date"]) == ("invoiced", "2027-000001", "2027-01-29")
        assert (first["net_total"], first["tax_total"], first["gross_total"]) == ("1404.00", "266.76", "1670.76")

        xml = await svc.http.get(f"/invoices/{first['invoice_id']}/xrechnung.xml", headers=MEMBER)
        pdf = await svc.http.get(f"/invoices/{first['invoice_id']}/pdf", headers=MEMBER)
        assert pdf.content.startswith(b"%PDF") and xml.headers["content-type"].startswith("application/xml")
        assert validate(xml.content).valid, validate(xml.content)
        for path in ("pdf", "xrechnung.xml"):  # another member learns nothing, not even that it exists
            hidden = await svc.http.get(f"/invoices/{first['invoice_id']}/{path}", headers=auth("member-2", "member"))
            unknown_id = uuid.uuid4()
            unknown = await svc.http.get(f"/invoices/{unknown_id}/{path}", headers=MEMBER)
            assert (hidden.status_code, unknown.status_code) == (404, 404)
            assert hidden.json()["detail"].replace(first["invoice_id"], "?") == \
                unknown.json()["detail"].replace(str(unknown_id), "?"), (hidden.text, unknown.text)
        docs = {d["kind"]: d for d in first["documents"]}
        import hashlib
        assert docs["pdf"]["sha256"] == hashlib.sha256(pdf.content).hexdigest()
        assert docs["xrechnung"]["url"] == f"https://invoicing.example/invoices/{first['invoice_id']}/xrechnung.xml"

        # second installment: the member asks for a change, an advisor adjusts and issues
        await run(svc, "2027-02-08")
        second = next(i for i in await invoices_of(svc, order_id) if i["status"] == "draft")
        r = await svc.http.post(f"/invoices/{second['invoice_id']}/change-request",
                                json={"message": "Please name the milestone"}, headers=MEMBER)
        assert r.status_code == 200 and r.json()["status"] == "waiting_for_adjustment"
        assert (await run(svc, "2027-02-15"))["issued"] == 0, "a waiting invoice is not issued by the run"
        r = await svc.http.patch(f"/invoices/{second['invoice_id']}", headers=ADVISOR, json={
            "lines": [{"description": "Abschlag 2/3: Design abgeschlossen", "quantity": "1", "unit": "lump_sum",
                       "unit_price": "1404.00"}]})
        assert r.status_code == 200 and r.json()["adjustments"][0]["by"] == "advisor-1"
        assert (await svc.http.post(f"/invoices/{second['invoice_id']}/issue", headers=MEMBER)).status_code == 403
        r = await svc.http.post(f"/invoices/{second['invoice_id']}/issue", headers=ADVISOR)
        assert r.status_code == 202 and (r.json()["status"], r.json()["documents_pending"]) == ("issuing", True)
        issued_now = await settled(svc, second["invoice_id"], "invoiced")
        assert issued_now["number"] == "2026-000001", "issued on the clock's day (2026)"
        assert {d["kind"] for d in issued_now["documents"]} == {"pdf", "xrechnung"}

        # final invoice deducts the installments
        await run(svc, "2027-03-31")
        final = next(i for i in await invoices_of(svc, order_id) if i["schedule_kind"] == "final")
        assert final["number"] == "2027-000002" and final["net_total"] == "4680.00"
        assert (final["gross_total"], final["prepaid_amount"], final["amount_due"]) == \
            ("5569.20", "3341.52", "2227.68")
        final_xml = await svc.http.get(f"/invoices/{final['invoice_id']}/xrechnung.xml", headers=ADVISOR)
        assert validate(final_xml.content).valid, validate(final_xml.content)

        # payment in two parts
        url = f"/invoices/{first['invoice_id']}/payments"
        assert (await svc.http.post(url, json={"amount": "1000.00", "received_on": "2027-01-20"},
                                    headers=MEMBER)).status_code == 403
        part = (await svc.http.post(url, json={"amount": "1000.00", "received_on": "2027-01-20"},
                                    headers=ADVISOR)).json()
        assert (part["status"], part["open_amount"]) == ("invoiced", "670.76")
        paid = (await svc.http.post(url, json={"amount": "670.76", "received_on": "2027-01-27"},
                                    headers=ADVISOR)).json()
        assert paid["status"] == "paid" and paid["paid_total"] == "1670.76"

        r = await svc.http.post(f"/invoices/{second['invoice_id']}/payments", headers=ADVISOR,
                                json={"amount": "1670.76", "received_on": "2027-01-02"})
        assert r.json()["status"] == "paid"

        # reminders for the unpaid final invoice: 7, 21 and 35 days after 14 Apr
        assert [(await run(svc, d))["reminded"] for d in
                ("2027-04-20", "2027-04-21", "2027-04-22", "2027-05-05", "2027-05-19", "2027-06-30")] == \
            [0, 1, 0, 1, 1, 0]
        final = (await svc.http.get(f"/invoices/{final['invoice_id']}", headers=ADVISOR)).json()
        assert final["reminders_sent"] == 3

        # cancellation of the final invoice with a cancellation invoice
        r = await svc.http.post(f"/invoices/{final['invoice_id']}/cancel", json={"reason": "wrong scope"},
                                headers=ADVISOR)
        assert r.status_code == 202 and r.json()["cancellation_pending"] is True, r.text
        pending = await svc.http.post(f"/invoices/{final['invoice_id']}/cancel", json={"reason": "x"},
                                      headers=ADVISOR)
        assert pending.status_code == 409 and "being cancelled" in pending.json()["detail"], pending.text
        cancelled = await settled(svc, final["invoice_id"], "cancelled")
        assert cancelled["cancellation_pending"] is False and cancelled["cancelled_by"]
        [storno] = [i for i in await invoices_of(svc, order_id) if i["kind"] == "cancellation"]
        assert (storno["number"], storno["cancels_number"], storno["issue_date"]) == \
            ("2027-000003", "2027-000002", "2027-03-31"), "dated no earlier than the invoice it cancels"
        storno_xml = await svc.http.get(f"/invoices/{storno['invoice_id']}/xrechnung.xml", headers=ADVISOR)
        assert validate(storno_xml.content).valid, validate(storno_xml.content)
        again = await svc.http.post(f"/invoices/{final['invoice_id']}/cancel", json={"reason": "x"}, headers=ADVISOR)
        assert again.status_code == 409 and again.json()["current_status"] == "cancelled"

        records = await read_topic(infra.kafka_bootstrap, f"{topic_prefix}kontor.invoices.v1", min_count=15)
        types = [r.type.removeprefix("kontor.invoice.").removesuffix(".v1") for r in records
                 if json.loads(r.value)["order_id"] == str(order_id)]
        counts = {t: types.count(t) for t in set(types)}
        # reminders also went to the installments while they were unpaid during the runs above
        assert counts.pop("reminder-sent") >= 3
        assert counts == {"draft-created": 3, "issued": 3, "change-requested": 1, "payment-recorded": 3, "paid": 2,
                          "cancelled": 1}


async def test_recurring_monthly_for_a_year_under_concurrent_runs(infra, topic_prefix):
    async with running_service(SPEC, infra, topic_prefix=topic_prefix, clock=FixedClock(NOW),
                               billing_runs_enabled=False, allow_future_as_of=True) as svc:
        client = await register_client(infra, topic_prefix)
        line = (OrderLineV1(description="Monthly retainer", quantity=D(1), unit="month", unit_price=D("1500.00"),
                            net_amount=D("1500.00")),)
        schedule = [PlannedInvoiceV1(seq=m, kind="recurring", invoice_date=dt.date(2027, m, 1),
                                     due_date=dt.date(2027, m, 15), lines=line, net_amount=D("1500.00"),
                                     period_start=dt.date(2027, m, 1)) for m in range(1, 13)]
        event = activated(client, schedule, mode="recurring", lines=line)
        await publish_event(infra.kafka_bootstrap, topic_prefix, event, time=NOW)

        async def known():
            return (await run(svc, "2026-12-26"))["drafted"] == 1
        await eventually(known, what="the order's plans")
        reports = await asyncio.gather(*(run(svc, "2027-12-31") for _ in range(3)))
        distinct = {r["run_id"]: r for r in reports}.values()  # asked again while active: the same run
        assert sum(r["drafted"] for r in distinct) == 11 and sum(r["issued"] for r in distinct) == 12
        again = await run(svc, "2027-12-31")
        assert (again["drafted"], again["queued"], again["issued"]) == (0, 0, 0), "the same as-of issues nothing twice"
        found = await invoices_of(svc, event.order_id)
        assert len(found) == 12 and {i["status"] for i in found} == {"invoiced"}
        assert sorted(i["number"] for i in found) == [f"2027-{n:06d}" for n in range(1, 13)]
        assert sorted(i["invoice_date"] for i in found) == [f"2027-{m:02d}-01" for m in range(1, 13)]


async def test_order_cancellation_drops_plans_discards_drafts_cancels_named_invoices(infra, topic_prefix):
    async with running_service(SPEC, infra, topic_prefix=topic_prefix, clock=FixedClock(NOW),
                               billing_runs_enabled=False, allow_future_as_of=True) as svc:
        event = await active_order(infra, topic_prefix)

        async def issued_first():
            return (await run(svc, "2027-01-15"))["issued"] == 1
        await eventually(issued_first, what="first installment issued")
        await run(svc, "2027-02-08")  # second is a draft now
        first, _second = await invoices_of(svc, event.order_id)
        cancelled_order = event.order.model_copy(update={"status": "cancelled", "version": 9})
        await publish_event(infra.kafka_bootstrap, topic_prefix, OrderCancelledV1(
            order_id=event.order_id, order=cancelled_order, occurred_at=NOW, actor=Actor(kind="advisor"),
            reason="client insolvent", cancel_invoice_ids=(uuid.UUID(first["invoice_id"]),)), time=NOW)

        async def settled():
            found = await invoices_of(svc, event.order_id)
            return found if {i["status"] for i in found} == {"cancelled", "discarded", "cancellation"} else None
        found = await eventually(settled, what="order cancellation applied")
        by_kind = {(i["kind"], i["status"]) for i in found}
        assert by_kind == {("invoice", "cancelled"), ("invoice", "discarded"), ("cancellation", "cancellation")}
        assert (await run(svc, "2027-12-31"))["drafted"] == 0, "the third installment was dropped"


async def test_orders_dated_at_the_ends_of_the_calendar_never_stop_a_run(infra, topic_prefix):
    """A plan dated 1 Jan of year 1 and a payment term beyond year 9999 (what an order event may
    carry): the run as of today drafts and issues the first as of today, holds the second for an
    advisor, and ends; nothing overflows, no run is left unfinished."""
    async with running_service(SPEC, infra, topic_prefix=topic_prefix, clock=FixedClock(NOW),
                               billing_runs_enabled=False) as svc:
        client = await register_client(infra, topic_prefix)
        line = (OrderLineV1(description="Beratung", quantity=D(1), unit="lump_sum", unit_price=D("500.00"),
                            net_amount=D("500.00")),)

        def plan(day):
            return PlannedInvoiceV1(seq=1, kind="advance", invoice_date=day, due_date=day, lines=line,
                                    net_amount=D("500.00"))
        ancient = activated(client, [plan(dt.date(1, 1, 1))], mode="advance", lines=line)
        endless = activated(client, [plan(dt.date(2026, 11, 20))], mode="advance", lines=line)
        terms = endless.order.payment.model_copy(update={"due_in_days": 10**9})  # the contract has no bound on it
        endless = endless.model_copy(update={"order": endless.order.model_copy(update={"payment": terms})})
        for event in (ancient, endless):
            await publish_event(infra.kafka_bootstrap, topic_prefix, event, time=NOW)

        async def both_planned():
            report = await run(svc, NOW.date().isoformat())
            return report if (await invoices_of(svc, ancient.order_id)) and \
                (await invoices_of(svc, endless.order_id)) else None
        report = await eventually(both_planned, what="both orders drafted by a run that ends")
        assert report["status"] == "finished" and report["errors"] == [], report
        [first] = await invoices_of(svc, ancient.order_id)
        first = await settled(svc, first["invoice_id"], "invoiced")
        assert (first["invoice_date"], first["issue_date"], first["due_date"]) == \
            ("0001-01-01", "2026-12-01", "2026-12-15"), "issued as of the run's date"
        [held] = await invoices_of(svc, endless.order_id)
        assert held["status"] == "waiting_for_adjustment" and held["number"] is None, held
        assert any(e.startswith("due_in_days:") for e in held["validation_errors"]), held["validation_errors"]
        fixed = await svc.http.patch(f"/invoices/{held['invoice_id']}", json={"due_in_days": 30}, headers=ADVISOR)
        assert fixed.status_code == 200, fixed.text
        assert (await svc.http.post(f"/invoices/{held['invoice_id']}/issue", headers=ADVISOR)).status_code == 202
        assert (await settled(svc, held["invoice_id"], "invoiced"))["due_date"] == "2026-12-31"


async def test_an_invoice_failing_the_official_rules_is_not_sent(infra, topic_prefix):
    official_validator()
    from kontor_invoicing.settings import Seller

    async with running_service(SPEC, infra, topic_prefix=topic_prefix, clock=FixedClock(NOW),
                               billing_runs_enabled=False, allow_future_as_of=True, xrechnung_rules_dir=RULES,
                               seller=Seller(phone="")) as svc:  # BR-DE-6: the seller's phone is required
        event = await active_order(infra, topic_prefix)

        async def drafted():
            return (await run(svc, "2027-01-08"))["drafted"] == 1
        await eventually(drafted, what="the first draft")
        report = await run(svc, "2027-01-15")
        assert (report["status"], report["queued"], report["issued"], report["held"]) == ("finished", 1, 0, 1)
        [held] = await invoices_of(svc, event.order_id)
        assert (held["status"], held["number"], held["documents"]) == ("waiting_for_adjustment", None, [])
        assert any(e.startswith("BR-DE-6") for e in held["validation_errors"]), held["validation_errors"]
        assert (await svc.http.get(f"/invoices/{held['invoice_id']}/pdf", headers=ADVISOR)).status_code == 404
        records = await read_topic(infra.kafka_bootstrap, f"{topic_prefix}kontor.invoices.v1", min_count=2)
        types = [r.type for r in records]
        assert "kontor.invoice.issued.v1" not in types
        [change] = [json.loads(r.value) for r in records if r.type == "kontor.invoice.change-requested.v1"]
        assert any(e.startswith("BR-DE-6") for e in change["validation_errors"])

        # the attempt's number was rolled back with it: no number of 2027 has been used
        import sqlalchemy as sa

        from kontor.db import create_engine
        from kontor_invoicing.adapters.orm import invoice_counters
        engine = create_engine(svc.database)
        try:
            async with engine.connect() as conn:
                assert (await conn.execute(sa.select(invoice_counters))).all() == []
        finally:
            await engine.dispose()



async def test_reminders_reach_every_due_invoice_however_many_had_all_theirs(infra):
    """Invoices that already had all their reminders (still unpaid) come first by due date;
    they must not crowd out an invoice whose first reminder is due."""
    from dataclasses import replace

    from kontor.db import create_engine, create_session_factory
    from kontor.outbox import Outbox
    from kontor.testing.services import fresh_database
    from kontor.topics import Topics
    from kontor_invoicing.adapters import repository
    from kontor_invoicing.adapters.orm import outbox
    from kontor_invoicing.domain import model
    from kontor_invoicing.service_layer import services
    from kontor_invoicing.settings import InvoicingSettings

    def issued(due: dt.date, reminders: int, n: int) -> model.Invoice:
        line = model.Line("Leistung", D(1), "lump_sum", D("100.00"), D("100.00"), "S", D(19))
        draft = model.Invoice(id=uuid.uuid4(), order_id=uuid.uuid4(), member_id="m", client_id=uuid.uuid4(), seq=1,
                              kind="invoice", schedule_kind="advance", status="draft", currency="EUR", lines=(line,),
                              invoice_date=due, due_in_days=0, created_at=NOW)
        return replace(model.issue(draft, number=model.format_number(2027, n), issue_date=due),
                       reminders_sent=reminders)

    async with fresh_database(infra, SPEC) as url:
        engine = create_engine(url)
        sessions = create_session_factory(engine)
        async with sessions.begin() as session:
            for n in range(1, 31):  # long overdue, all three reminders sent, still unpaid
                await repository.add(session, issued(dt.date(2027, 1, 1), 3, n))
            await repository.add(session, late := issued(dt.date(2027, 3, 1), 0, 31))
        settings = InvoicingSettings(database_url=url, billing_batch_size=10)
        deps = services.Deps(Outbox(outbox, Topics("")), FixedClock(NOW), settings)
        assert await services.send_reminders(sessions, deps, as_of=dt.date(2027, 3, 8)) == 1
        assert await services.send_reminders(sessions, deps, as_of=dt.date(2027, 3, 8)) == 0, "once per step"
        async with sessions() as session:
            assert (await repository.get(session, late.id)).reminders_sent == 1
        await engine.dispose()


async def test_a_client_asking_for_zugferd_gets_the_x_rechnung_inside_its_pdf(infra, topic_prefix):
    import io

    from pypdf import PdfReader

    async with running_service(SPEC, infra, topic_prefix=topic_prefix, clock=FixedClock(NOW),
                               billing_runs_enabled=False, allow_future_as_of=True) as svc:
        event = await active_order(infra, topic_prefix, zugferd=True)

        async def issued_first():
            return (await run(svc, "2027-01-15"))["issued"] == 1
        await eventually(issued_first, what="first installment issued")
        [invoice] = await invoices_of(svc, event.order_id)
        pdf = (await svc.http.get(f"/invoices/{invoice['invoice_id']}/pdf", headers=ADVISOR)).content
        xml = (await svc.http.get(f"/invoices/{invoice['invoice_id']}/xrechnung.xml", headers=ADVISOR)).content
        assert PdfReader(io.BytesIO(pdf)).attachments["factur-x.xml"] == [xml]


async def test_the_billing_run_command_starts_a_run_and_follows_it_to_its_end(infra, topic_prefix):
    import os
    import subprocess

    async with running_service(SPEC, infra, topic_prefix=topic_prefix, clock=FixedClock(NOW),
                               billing_runs_enabled=False, allow_future_as_of=True) as svc:
        event = await active_order(infra, topic_prefix)

        async def planned():
            import sqlalchemy as sa

            from kontor.db import create_engine
            from kontor_invoicing.adapters.orm import planned_invoices
            engine = create_engine(svc.database)
            try:
                async with engine.connect() as conn:
                    return (await conn.execute(sa.select(sa.func.count()).select_from(planned_invoices))).scalar_one()
            finally:
                await engine.dispose()
        await eventually(planned, what="the order's planned invoices")

        env = {**os.environ, "KONTOR_INVOICING_DATABASE_URL": svc.database, "KONTOR_INVOICING_LOG_LEVEL": "WARNING",
               "KONTOR_INVOICING_ALLOW_FUTURE_AS_OF": "true"}
        done = await asyncio.to_thread(subprocess.run, [sys.executable, "-m", "kontor_invoicing", "billing-run",
                                                        "--as-of", "2027-01-15", "--poll-s", "0.1"],
                                       env=env, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr[-2000:]
        assert "finished: drafted 1, issued 1, held 0, reminded 0" in done.stderr, done.stderr[-2000:]
        assert "100%|" in done.stderr, f"a progress bar drawn to its end: {done.stderr[-2000:]}"
        [invoice] = await invoices_of(svc, event.order_id)
        assert (invoice["status"], invoice["number"]) == ("invoiced", "2027-000001")
        runs = (await svc.http.get("/billing-runs", headers=ADVISOR)).json()
        assert [(r["requested_by"], r["as_of"], r["issued"]) for r in runs] == [("cli", "2027-01-15", 1)]
        assert (await svc.http.get("/billing-runs", headers=MEMBER)).status_code == 403
        unknown = await svc.http.get(f"/billing-runs/{uuid.uuid4()}", headers=ADVISOR)
        assert unknown.status_code == 404


async def test_the_api_queues_an_invoice_and_never_renders_it_itself(infra, topic_prefix):
    """Without a worker, "save and send" leaves the draft `issuing`: no number, no documents,
    the document links answer 409 until a worker has made them."""
    import sqlalchemy as sa

    from kontor.db import create_engine, create_session_factory
    from kontor_invoicing.adapters import repository
    from kontor_invoicing.adapters.orm import invoice_counters
    from kontor_invoicing.domain import model

    async with running_service(SPEC, infra, topic_prefix=topic_prefix, clock=FixedClock(NOW), start_worker=False,
                               billing_runs_enabled=False) as svc:
        line = model.Line("Leistung", D(1), "lump_sum", D("100.00"), D("100.00"), "S", D(19))
        draft = model.Invoice(id=uuid.uuid4(), order_id=uuid.uuid4(), member_id="member-1", client_id=uuid.uuid4(),
                              seq=1, kind="invoice", schedule_kind="advance", status="draft", currency="EUR",
                              lines=(line,), invoice_date=NOW.date(), due_in_days=14, created_at=NOW)
        engine = create_engine(svc.database)
        try:
            async with create_session_factory(engine).begin() as session:
                await repository.add(session, draft)
            r = await svc.http.post(f"/invoices/{draft.id}/issue", headers=MEMBER)
            assert r.status_code == 202 and (r.json()["status"], r.json()["number"]) == ("issuing", None), r.text
            pdf = await svc.http.get(f"/invoices/{draft.id}/pdf", headers=MEMBER)
            assert (pdf.status_code, pdf.json()["current_status"]) == (409, "issuing"), pdf.text
            again = await svc.http.post(f"/invoices/{draft.id}/issue", headers=MEMBER)
            assert again.status_code == 409, "queued once"
            async with engine.connect() as conn:
                assert (await conn.execute(sa.select(invoice_counters))).all() == [], "no number taken by the API"
        finally:
            await engine.dispose()
