"""The order lifecycle over HTTP against real PostgreSQL and Kafka, driven only through the
API and the client's confirmation page (fetched, and its form posted, as a browser would)."""
import datetime as dt
import json
import re
import uuid
from decimal import Decimal

import orders_support as support
import pytest
from orders_support import ADVISOR, MEMBER, NOW, OTHER

from kontor.clock import FixedClock
from kontor.contracts.common import Actor
from kontor.contracts.invoices import InvoiceIssuedV1, InvoiceV1
from kontor.testing import eventually
from kontor.testing.kafka import publish_event, read_topic
from kontor.testing.services import running_service
from kontor_orders.spec import SPEC

pytestmark = pytest.mark.integration

async def known_client(infra, prefix, *, language="de", **kw) -> uuid.UUID:
    return await support.known_client(infra, prefix, name=f"ACME {language}", language=language, **kw)


def order_body(client_id, /, **changes) -> dict:
    body = {
        "client_id": str(client_id), "contact_person": {"name": "Erika Muster", "email": "erika@acme.example"},
        "sector": "design", "place_of_service": "DE", "project_name": "Relaunch 2027",
        "description": "Redesign and implementation of the company website.",
        "lines": [{"description": "Design workshop", "quantity": "2", "unit": "day", "unit_price": "640.00"},
                  {"description": "Implementation", "quantity": "40", "unit": "hour", "unit_price": "85.00"}],
        "currency": "EUR", "service_period": {"start": "2027-01-01", "end": "2027-03-31"},
        "confirmation": {"mode": "send", "offer_valid_until": "2026-12-15"},
        "payment": {"mode": "installments", "due_in_days": 14, "installments": [
            {"date": "2027-01-15", "percentage": "30"}, {"date": "2027-02-15", "percentage": "30"},
            {"date": "2027-03-31", "percentage": "40"}]},
        "comment_for_advisors": "Long-standing client.",
    }
    body.update(changes)
    return body


async def created(svc, client_id, /, **changes) -> dict:
    async def attempt():
        r = await svc.http.post("/orders", json=order_body(client_id, **changes), headers=MEMBER)
        return r if r.status_code == 201 else None
    return (await eventually(attempt, what="orders knowing the client")).json()


async def act(svc, order_id, action, headers, body=None, expect=200) -> dict:
    r = await svc.http.post(f"/orders/{order_id}/{action}", json=body, headers=headers)
    assert r.status_code == expect, (action, r.text)
    return r.json()


async def events_of(infra, prefix, order_id, min_count) -> list[tuple[str, dict]]:
    records = await read_topic(infra.kafka_bootstrap, f"{prefix}kontor.orders.v1", min_count=min_count)
    return [(r.type.removeprefix("kontor.order.").removesuffix(".v1"), json.loads(r.value)) for r in records
            if r.key == order_id]


def issued(order: dict, n: int) -> InvoiceIssuedV1:
    invoice_id = uuid.uuid4()
    inv = InvoiceV1(invoice_id=invoice_id, number=f"2027-{n:06d}", order_id=order["order_id"],
                    member_id=order["member_id"], client_id=order["client"]["client_id"], client_name="ACME",
                    currency="EUR", issue_date=dt.date(2027, 1, 1), due_date=dt.date(2027, 1, 15),
                    net_total=Decimal(1), tax_total=Decimal(0), gross_total=Decimal(1), amount_due=Decimal(1))
    return InvoiceIssuedV1(invoice_id=invoice_id, client_id=inv.client_id, order_id=inv.order_id,
                           member_id=inv.member_id, occurred_at=NOW, actor=Actor(kind="system"), invoice=inv)


async def test_full_journey_with_client_confirmation(infra, topic_prefix):
    async with running_service(SPEC, infra, topic_prefix=topic_prefix, clock=FixedClock(NOW),
                               order_runs_enabled=False, public_base_url="https://kontor.example",
                               allow_future_as_of=True) as svc:
        client_id = await known_client(infra, topic_prefix)
        order = await created(svc, client_id)
        order_id = order["order_id"]
        assert order["status"] == "draft"
        assert (order["net_total"], order["gross_total"]) == ("4680.00", "5569.20")
        assert order["vat"] == [{"category": "S", "rate": "19", "taxable_amount": "4680.00", "tax_amount": "889.20",
                                 "note": None}]
        assert (await svc.http.get(f"/orders/{order_id}", headers=ADVISOR)).status_code == 404, "drafts are private"
        assert (await svc.http.get(f"/orders/{order_id}", headers=OTHER)).status_code == 404

        pdf = b"%PDF-1.4 timesheet\n%%EOF"
        up = await svc.http.post(f"/orders/{order_id}/attachments", headers=MEMBER,
                                 files={"file": ("timesheet.pdf", pdf, "application/pdf")})
        assert up.status_code == 201 and up.json()["sha256"] == __import__("hashlib").sha256(pdf).hexdigest()

        submitted = await act(svc, order_id, "submit", MEMBER)
        assert submitted["status"] == "smart_review" and submitted["flags"] == []
        assert (await act(svc, order_id, "submit", MEMBER, expect=409))["current_status"] == "smart_review"
        assert (await svc.http.get(f"/orders/{order_id}", headers=OTHER)).status_code == 404
        assert (await svc.http.post(f"/orders/{order_id}/approve", headers=MEMBER)).status_code == 403
        listed = (await svc.http.get("/orders", params={"status": "smart_review"}, headers=ADVISOR)).json()
        assert [o["order_id"] for o in listed] == [order_id]

        adjusted = await act(svc, order_id, "adjust", ADVISOR,
                             {"project_name": "Website relaunch 2027", "note": "clearer title"})
        assert adjusted["project_name"] == "Website relaunch 2027" and adjusted["net_total"] == "4680.00"
        refused = await svc.http.post(f"/orders/{order_id}/adjust", json={"net_total": "1"}, headers=ADVISOR)
        assert refused.status_code == 422

        approved = await act(svc, order_id, "approve", ADVISOR)
        assert approved["status"] == "client_confirmation"

        events = await events_of(infra, topic_prefix, order_id, 4)
        sent = dict(events)["sent-for-confirmation"]
        assert sent["valid_until"] == "2026-12-15T22:59:59.999999Z", "end of the day in Berlin"
        link = sent["confirmation_url"]
        assert link.startswith("https://kontor.example/confirm/")
        path = link.removeprefix("https://kontor.example")

        page = await svc.http.get(path)
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        html = page.text
        assert "Auftragsbestätigung" in html and "Website relaunch 2027" in html and "Dies ist keine Rechnung" in html
        assert "5.569,20 EUR" in html and "timesheet.pdf" in html
        # installment shares as people write them, not as Decimal.normalize() does (3E+1)
        rows = re.findall(r"<tr>(.*?)</tr>", html.split('id="installments"')[1], flags=re.S)[1:]
        cells = [re.findall(r">([^<>]+)</td>", row) for row in rows]
        assert cells == [["15.01.2027", "30 %", "1.404,00 EUR", "266,76 EUR", "1.670,76 EUR"],
                         ["15.02.2027", "30 %", "1.404,00 EUR", "266,76 EUR", "1.670,76 EUR"],
                         ["31.03.2027", "40 %", "1.872,00 EUR", "355,68 EUR", "2.227,68 EUR"]], cells
        assert "E+" not in html
        assert "40 Std." in html, "a quantity of 40 as people write it (not 4E+1)"
        assert "member-1" not in html and "Long-standing client" not in html, "no member name, no comments"
        doc_link = re.search(r'href="(/confirm/[^"]+/documents/[^"]+)"', html).group(1)
        doc = await svc.http.get(doc_link)
        assert doc.status_code == 200 and doc.content == pdf
        action = re.search(r'<form method="post" action="([^"]+)"', html).group(1)
        answer = await svc.http.post(action, data={"action": "confirm", "message": ""})
        assert answer.status_code == 200 and "Der Auftrag ist bestätigt" in answer.text
        again = await svc.http.get(path)
        assert again.status_code == 410 and "bereits verwendet" in again.text
        assert (await svc.http.get("/confirm/not-a-token")).status_code == 404

        active = (await svc.http.get(f"/orders/{order_id}", headers=MEMBER)).json()
        assert active["status"] == "active" and active["payment_guarantee"] is True
        assert [(s["kind"], s["invoice_date"], s["net_amount"], s["deducted"]) for s in active["schedule"]] == [
            ("installment", "2027-01-15", "1404.00", "0"), ("installment", "2027-02-15", "1404.00", "0"),
            ("final", "2027-03-31", "1872.00", "2808.00")]

        # completion needs the service period over and every scheduled invoice issued
        run = (await svc.http.post("/order-runs", json={"as_of": "2027-04-01"}, headers=ADVISOR)).json()
        assert run["completed"] == 0
        for n in range(1, 4):
            await publish_event(infra.kafka_bootstrap, topic_prefix, issued(active, n), time=NOW)

        async def all_issued():
            o = (await svc.http.get(f"/orders/{order_id}", headers=MEMBER)).json()
            return len(o["issued_invoices"]) == 3
        await eventually(all_issued, what="three invoices recorded")
        run = (await svc.http.post("/order-runs", json={"as_of": "2027-04-01"}, headers=ADVISOR)).json()
        assert run == {"as_of": "2027-04-01", "warned": 0, "expired": 0, "completed": 1, "renewed": 0, "reminded": 0,
                       "resumed": 0, "finished": 0}

        history = (await svc.http.get(f"/orders/{order_id}/history", headers=MEMBER)).json()
        assert [(h["action"], h["to_status"]) for h in history if h["action"] != "invoice_issued"] == [
            ("create", "draft"), ("attach", "draft"), ("submit", "smart_review"), ("adjust", "smart_review"),
            ("approve", "client_confirmation"), ("confirm", "active"), ("complete", "completed")]
        assert history[3]["details"] == [{"field": "project_name", "before": "Relaunch 2027",
                                          "after": "Website relaunch 2027"}]
        assert history[3]["reason"] == "clearer title" and history[5]["actor_kind"] == "client"

        events = await events_of(infra, topic_prefix, order_id, 8)
        assert [name for name, _ in events] == ["submitted", "updated", "approved", "sent-for-confirmation",
                                                "confirmed", "activated", "completed"]
        activated = dict(events)["activated"]["order"]
        assert len(activated["schedule"]) == 3 and activated["contact_person"]["email"] == "erika@acme.example"
        assert activated["attachments"][0]["filename"] == "timesheet.pdf"


async def test_skipped_confirmation_activates_on_approval_and_the_member_completes(infra, topic_prefix):
    async with running_service(SPEC, infra, topic_prefix=topic_prefix, clock=FixedClock(NOW),
                               order_runs_enabled=False) as svc:
        client_id = await known_client(infra, topic_prefix, language="en", kind="company", vat_id="FR40303265045",
                                       country="FR")
        order = await created(svc, client_id, place_of_service="EU",
                              confirmation={"mode": "skip", "skip_reason": "framework contract signed"},
                              service_period={"start": "2026-10-01", "end": "2026-10-31"},
                              payment={"mode": "after_completion", "invoice_date": "2026-11-01"})
        assert order["vat"][0]["category"] == "AE" and "Reverse charge" in order["vat"][0]["note"]
        order_id = order["order_id"]
        await act(svc, order_id, "submit", MEMBER)
        active = await act(svc, order_id, "approve", ADVISOR)
        assert active["status"] == "active" and active["payment_guarantee"] is False
        assert [(s["kind"], s["invoice_date"]) for s in active["schedule"]] == [("after_completion", "2026-11-22")]
        assert (await act(svc, order_id, "complete", MEMBER, expect=409))["current_status"] == "active"
        await publish_event(infra.kafka_bootstrap, topic_prefix, issued(active, 1), time=NOW)

        async def complete():
            r = await svc.http.post(f"/orders/{order_id}/complete", headers=MEMBER)
            return r if r.status_code == 200 else None
        done = (await eventually(complete, what="completion by hand")).json()
        assert done["status"] == "completed"
        events = [name for name, _ in await events_of(infra, topic_prefix, order_id, 4)]
        assert events == ["submitted", "approved", "activated", "completed"]

        copy = await act(svc, order_id, "duplicate", MEMBER, expect=201)
        assert copy["status"] == "draft" and copy["order_id"] != order_id and copy["duplicated_from"] == order_id
        assert (await svc.http.post(f"/orders/{order_id}/duplicate", headers=OTHER)).status_code == 404


async def test_offer_expiry_warning_and_rejection_by_order_runs(infra, topic_prefix):
    async with running_service(SPEC, infra, topic_prefix=topic_prefix, clock=FixedClock(NOW),
                               order_runs_enabled=False, allow_future_as_of=True) as svc:
        client_id = await known_client(infra, topic_prefix)
        order = await created(svc, client_id, confirmation={"mode": "send", "offer_valid_until": "2026-11-30"})
        order_id = order["order_id"]
        await act(svc, order_id, "submit", MEMBER)
        await act(svc, order_id, "approve", ADVISOR)
        assert (await svc.http.post("/order-runs", json={"as_of": "2026-11-26"}, headers=MEMBER)).status_code == 403
        runs = [(await svc.http.post("/order-runs", json={"as_of": d}, headers=ADVISOR)).json()
                for d in ("2026-11-26", "2026-11-27", "2026-11-28", "2026-11-30", "2026-12-01")]
        assert [(r["warned"], r["expired"]) for r in runs] == [(0, 0), (1, 0), (0, 0), (0, 0), (0, 1)]
        rejected = (await svc.http.get(f"/orders/{order_id}", headers=MEMBER)).json()
        assert rejected["status"] == "rejected" and rejected["rejection"]["by"] == "offer_expired"
        events = await events_of(infra, topic_prefix, order_id, 5)
        assert [name for name, _ in events] == ["submitted", "approved", "sent-for-confirmation", "offer-expiring",
                                                "rejected"]
        assert dict(events)["rejected"]["rejected_by"] == "offer_expired"
        link = dict(events)["sent-for-confirmation"]["confirmation_url"]
        gone = await svc.http.get("/confirm/" + link.rsplit("/", 1)[1])
        assert gone.status_code == 410
        copy = await act(svc, order_id, "duplicate", MEMBER, expect=201)
        assert copy["status"] == "draft"


async def test_client_requests_changes_then_rejects_and_cancellation(infra, topic_prefix):
    async with running_service(SPEC, infra, topic_prefix=topic_prefix, clock=FixedClock(NOW),
                               order_runs_enabled=False) as svc:
        client_id = await known_client(infra, topic_prefix, language="en")
        order = await created(svc, client_id)
        order_id = order["order_id"]
        await act(svc, order_id, "submit", MEMBER)
        await act(svc, order_id, "approve", ADVISOR)
        [(_, sent)] = [e for e in await events_of(infra, topic_prefix, order_id, 3) if e[0] == "sent-for-confirmation"]
        path = "/confirm/" + sent["confirmation_url"].rsplit("/", 1)[1]
        page = await svc.http.get(path)
        assert "Order confirmation" in page.text and "5,569.20 EUR" in page.text
        no_message = await svc.http.post(path, data={"action": "request_changes", "message": " "})
        assert no_message.status_code == 422 and "Please write a message" in no_message.text
        changes = await svc.http.post(path, data={"action": "request_changes", "message": "Only one workshop day."})
        assert changes.status_code == 200
        draft = (await svc.http.get(f"/orders/{order_id}", headers=MEMBER)).json()
        assert draft["status"] == "draft" and draft["changes_requested"] == "Only one workshop day."

        body = order_body(client_id)
        body["lines"][0]["quantity"] = "1"
        edited = await svc.http.put(f"/orders/{order_id}", json=body, headers=MEMBER)
        assert edited.status_code == 200 and edited.json()["net_total"] == "4040.00"
        await act(svc, order_id, "submit", MEMBER)
        await act(svc, order_id, "approve", ADVISOR)
        sent_events = [e for e in await events_of(infra, topic_prefix, order_id, 7) if e[0] == "sent-for-confirmation"]
        second = "/confirm/" + sent_events[-1][1]["confirmation_url"].rsplit("/", 1)[1]
        rejected = await svc.http.post(second, data={"action": "reject", "message": "Budget cut."})
        assert rejected.status_code == 200 and "rejected" in rejected.text
        final = (await svc.http.get(f"/orders/{order_id}", headers=MEMBER)).json()
        assert final["rejection"] == {"by": "client", "reason": "Budget cut."}

        # cancellation of an active order, decided by an advisor
        other = await created(svc, client_id, confirmation={"mode": "skip", "skip_reason": "signed contract"})
        await act(svc, other["order_id"], "submit", MEMBER)
        await act(svc, other["order_id"], "approve", ADVISOR)
        await act(svc, other["order_id"], "cancellation-request", MEMBER, {"reason": "project stopped"})
        bad = await svc.http.post(f"/orders/{other['order_id']}/cancellation-decision", headers=ADVISOR,
                                  json={"approve": True, "reason": "ok", "cancel_invoice_ids": [str(uuid.uuid4())]})
        assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == ["body", "cancel_invoice_ids"]
        declined = await act(svc, other["order_id"], "cancellation-decision", ADVISOR,
                             {"approve": False, "reason": "work already delivered"})
        assert declined["status"] == "active"
        await act(svc, other["order_id"], "cancellation-request", MEMBER, {"reason": "project stopped, really"})
        cancelled = await act(svc, other["order_id"], "cancellation-decision", ADVISOR,
                              {"approve": True, "reason": "agreed with the client"})
        assert cancelled["status"] == "cancelled"
        assert (await act(svc, other["order_id"], "complete", MEMBER, expect=409))["current_status"] == "cancelled"
        names = [n for n, _ in await events_of(infra, topic_prefix, other["order_id"], 5)]
        assert names == ["submitted", "approved", "activated", "cancellation-requested", "updated",
                         "cancellation-requested", "cancelled"]


async def test_automatic_checks_and_validation(infra, topic_prefix):
    async with running_service(SPEC, infra, topic_prefix=topic_prefix, clock=FixedClock(NOW),
                               order_runs_enabled=False) as svc:
        blocked = await known_client(infra, topic_prefix, standing="blocked")
        order = await created(svc, blocked)
        rejected = await act(svc, order["order_id"], "submit", MEMBER)
        assert rejected["status"] == "rejected" and rejected["rejection"]["by"] == "automatic_check"
        assert "blocked" in rejected["rejection"]["reason"]

        restricted = await known_client(infra, topic_prefix, standing="advance_payment_only")
        order = await created(svc, restricted)
        assert (await act(svc, order["order_id"], "submit", MEMBER))["status"] == "rejected"
        advance = await created(svc, restricted, payment={"mode": "advance", "due_in_days": 7})
        assert (await act(svc, advance["order_id"], "submit", MEMBER))["status"] == "smart_review"

        ok = await known_client(infra, topic_prefix)
        crafts = await created(svc, ok, sector="crafts")
        assert "cannot process" in (await act(svc, crafts["order_id"], "submit", MEMBER))["rejection"]["reason"]
        cheap = await created(svc, ok, lines=[{"description": "Support", "quantity": "10", "unit": "hour",
                                               "unit_price": "15.00"}],
                              payment={"mode": "after_completion", "invoice_date": "2027-04-01"})
        flagged = await act(svc, cheap["order_id"], "submit", MEMBER)
        assert flagged["status"] == "smart_review"
        assert flagged["flags"][0]["figures"] == {"line": 0, "unit": "hour", "unit_price": "15.00", "currency": "EUR",
                                                  "exchange_rate_eur": "1", "hourly_fee_eur": "15.00",
                                                  "threshold_eur": "18.69"}

        incomplete = await created(svc, ok, sector=None, payment=None)
        r = await svc.http.post(f"/orders/{incomplete['order_id']}/submit", headers=MEMBER)
        assert r.status_code == 422 and {tuple(e["loc"]) for e in r.json()["detail"]} == {
            ("body", "sector"), ("body", "payment")}

        cases = [
            ({"lines": []}, ["body", "lines"]),
            ({"currency": "XYZ"}, ["body", "currency"]),
            ({"sector": "astrology"}, ["body", "sector"]),
            ({"service_period": {"start": "2027-02-01", "end": "2027-01-01"}}, ["body", "service_period", "end"]),
            ({"confirmation": {"mode": "skip"}}, ["body", "confirmation", "skip_reason"]),
            ({"payment": {"mode": "installments", "installments": [{"date": "2027-01-15", "amount": "100.00"}]}},
             ["body", "payment", "installments"]),
            ({"payment": {"mode": "recurring", "interval": "week", "first_invoice_date": "2027-01-01"}},
             ["body", "payment", "interval"]),
            ({"currency": "JPY", "lines": [{"description": "x", "quantity": "1", "unit": "day", "unit_price": "1.5"}]},
             ["body", "lines", "0", "unit_price"]),
            ({"client_id": str(uuid.uuid4())}, ["body", "client_id"]),
        ]
        for changes, loc in cases:
            r = await svc.http.post("/orders", json=order_body(ok, **changes), headers=MEMBER)
            assert r.status_code == 422, (changes, r.text)
            assert loc in [e["loc"] for e in r.json()["detail"]], (loc, r.json())

        big = await svc.http.post(f"/orders/{cheap['order_id']}/attachments", headers=MEMBER,
                                  files={"file": ("virus.exe", b"MZ", "application/x-msdownload")})
        assert big.status_code == 422 and big.json()["detail"][0]["loc"] == ["body", "file"]


async def test_an_order_run_as_of_a_later_date_than_today_is_refused_unless_allowed(infra, topic_prefix):
    async with running_service(SPEC, infra, topic_prefix=topic_prefix, clock=FixedClock(NOW),
                               order_runs_enabled=False) as svc:
        client_id = await known_client(infra, topic_prefix)
        order = await created(svc, client_id, confirmation={"mode": "send", "offer_valid_until": "2026-11-23"})
        await act(svc, order["order_id"], "submit", MEMBER)
        await act(svc, order["order_id"], "approve", ADVISOR)
        later = await svc.http.post("/order-runs", json={"as_of": "2026-11-24"}, headers=ADVISOR)  # NOW: 22 Nov
        assert later.status_code == 422, later.text
        assert later.json()["detail"][0]["loc"] == ["body", "as_of"]
        assert "must not be after today" in later.json()["detail"][0]["msg"]
        still = (await svc.http.get(f"/orders/{order['order_id']}", headers=MEMBER)).json()
        assert still["status"] == "client_confirmation", "a refused run expired no offer"
        today = (await svc.http.post("/order-runs", json={"as_of": "2026-11-22"}, headers=ADVISOR))
        assert today.status_code == 200 and today.json()["expired"] == 0
